import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const module = (path: string): string => fileURLToPath(new URL(`../../src/core/${path}`, import.meta.url));
const RUN = fileURLToPath(new URL('../../src/commands/shared/run.js', import.meta.url));

/** Runs a small Node program that uses exitEvenIfHeld, as a finished command does. */
const program = (source: string) => run(`import { exitEvenIfHeld } from ${JSON.stringify(RUN)};\n${source}`);

/** Runs a Node module from source; SIGKILL after 30 s (code null). */
function run(source: string): Promise<{ code: number | null; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stderr, ms: Date.now() - started });
    });
  });
}

describe('a finished command exits even when a client library holds a handle', () => {
  it('exits with its own code and says why when something still holds the event loop', async () => {
    // A listening server stands for the socket a client library forgot.
    const r = await program(`import { createServer } from 'node:net';
createServer().listen(0, '127.0.0.1');
process.exitCode = 3;
exitEvenIfHeld(3, (m) => console.error(m), 300);`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /done, but a connection was still open after 0\.3 s: exiting anyway/);
  });

  it('never holds a process that is free to exit (the timer is unref-ed)', async () => {
    const r = await program(`process.exitCode = 0;
exitEvenIfHeld(0, (m) => console.error(m), 60_000);`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.ok(r.ms < 30_000, 'the process waited for the grace timer');
  });
});

describe("verify's record of its run, when Kafka does not answer", () => {
  // A broker that accepts connections and never answers: what a wedged client call looks like from outside.
  let silent: Server;
  let port = 0;
  const sockets = new Set<Socket>();
  before(async () => {
    silent = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    port = (silent.address() as { port: number }).port;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('gives up at its deadline, names the step it was waiting on, and leaves nothing holding the process', async () => {
    // In a process of its own, as verify runs it: the process must end by itself once the record is given up.
    const r = await run(
      `import { loadConfig } from ${JSON.stringify(module('config/index.js'))};
import { silentLogger } from ${JSON.stringify(module('logger.js'))};
import { recordVerifyRun } from ${JSON.stringify(module('verify/record.js'))};
const config = loadConfig({ env: { STREAMCTL_KAFKA_BROKERS: '127.0.0.1:${port}', STREAMCTL_PIPELINE_ID: 'deadline' } });
const result = { run: 'vf-test', started_at: '', finished_at: new Date().toISOString(), equal: true, interrupted: false, results: [], seconds: 0 };
await recordVerifyRun(config, silentLogger, result, 1500).then(() => console.error('recorded'), (err) => console.error(err.message));`,
    );
    assert.notEqual(r.code, null, 'the process was still held 30 s after the record was given up');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^recording the run \(at: creating the checkpoints topic\) timed out after 1500 ms$/m);
  });
});
