import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { REPO } from '../helpers/monitoring.js';
import { freePort } from '../helpers/prometheus.js';
import { runCli } from '../helpers/run-cli.js';

/**
 * docker/ without a Docker engine (none runs on these machines): the compose files as
 * docker-compose itself resolves them (Debian's package; scripts/stack installs it), the
 * Dockerfile's shape, and its entry points run outside Docker with the compose environment.
 * What this cannot prove: that the images build and the containers start (README, "Docker").
 */
interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: Array<string | { source: string; target: string }>;
  healthcheck?: { interval?: string; test?: string[] };
  depends_on?: Record<string, { condition: string }>;
  network_mode?: string;
}

function composeConfig(file: string): { services: Record<string, Service> } {
  const run = spawnSync('docker-compose', ['-f', `${REPO}docker/${file}`, 'config'], { encoding: 'utf8' });
  assert.ok(!run.error, `docker-compose not found (bash scripts/stack up installs it): ${run.error?.message}`);
  assert.equal(run.status, 0, run.stderr);
  return parse(run.stdout) as { services: Record<string, Service> };
}

describe('docker/: compose files, Dockerfile and entry points (no Docker engine)', () => {
  it('docker-compose accepts docker-compose.yml: every part, health checks every 30 s, start order by health', () => {
    const { services } = composeConfig('docker-compose.yml');
    assert.deepEqual(Object.keys(services).sort(), ['bigquery', 'grafana', 'kafka', 'postgres', 'prometheus', 'receiver', 'redis', 'stream']);
    for (const [name, s] of Object.entries(services)) assert.equal(s.healthcheck?.interval, '30s', `${name}: health check every 30 s`);
    assert.match(services['postgres']!.image!, /^postgres:15/);
    assert.ok(services['postgres']!.command!.includes('wal_level=logical'));
    assert.match(services['kafka']!.image!, /^apache\/kafka:4\./);
    assert.equal(services['kafka']!.environment!['KAFKA_PROCESS_ROLES'], 'broker,controller', 'KRaft, no ZooKeeper');
    assert.match(services['redis']!.image!, /^redis:7/);
    assert.deepEqual(services['stream']!.command, ['stream', '--role', 'all']);
    for (const dep of ['postgres', 'kafka', 'redis', 'bigquery', 'receiver']) assert.equal(services['stream']!.depends_on?.[dep]?.condition, 'service_healthy', `stream waits for ${dep}`);
    assert.equal(services['grafana']!.depends_on?.['prometheus']?.condition, 'service_healthy');
    // The monitoring it mounts is the one the tests check.
    const mounts = Object.values(services).flatMap((s) => (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[0]! : v.source)));
    for (const file of ['docker/prometheus/rules.yml', 'docker/prometheus/prometheus.yml', 'docker/grafana/dashboards', 'docker/grafana/provisioning']) {
      assert.ok(mounts.includes(`${REPO}${file}`), `mounts ${file}`);
      assert.ok(existsSync(`${REPO}${file}`));
    }
  });

  it('docker-compose accepts docker-compose.test.yml: the suite runs once every server is healthy, on the local stack ports', () => {
    const { services } = composeConfig('docker-compose.test.yml');
    const tests = services['tests']!;
    assert.equal(tests.build?.target, 'test');
    assert.ok(tests.command!.join(' ').includes('node --test --test-concurrency=1 dist/test/unit/ dist/test/cli/ dist/test/integration/'));
    for (const dep of ['postgres', 'kafka', 'redis', 'bigquery', 'receiver']) assert.equal(tests.depends_on?.[dep]?.condition, 'service_healthy');
    for (const [name, s] of Object.entries(services)) if (name !== 'postgres') assert.equal(s.network_mode, 'service:postgres', `${name} shares loopback`);
    const stackEnv = readFileSync(`${REPO}scripts/stack.env`, 'utf8');
    for (const port of ['54329', '19092', '16379', '19050', '18080']) assert.ok(stackEnv.includes(`=${port}`) && JSON.stringify(services).includes(port), `port ${port}`);
  });

  it('the Dockerfile is multi-stage and its runtime image runs as a non-root user', () => {
    const text = readFileSync(`${REPO}docker/Dockerfile`, 'utf8');
    const stages = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => m[2]);
    assert.deepEqual(stages, ['build', 'test', 'prune', 'runtime']);
    const runtime = text.slice(text.lastIndexOf('\nFROM '));
    assert.match(runtime, /^USER\s+(?!root\b|0\b)\S+/m);
    assert.doesNotMatch(runtime, /COPY --from=\S+ \/app\/(src|test|bench)\b/, 'no sources or tests in the runtime image');
  });

  it("runs the image's entry point outside Docker: --help, and the compose stream's environment is a valid configuration", async () => {
    const text = readFileSync(`${REPO}docker/Dockerfile`, 'utf8');
    const entrypoint = JSON.parse(/^ENTRYPOINT\s+(\[.*\])$/m.exec(text)![1]!) as string[];
    const cmd = JSON.parse(/^CMD\s+(\[.*\])$/m.exec(text.slice(text.lastIndexOf('\nFROM ')))![1]!) as string[];
    assert.deepEqual(cmd, ['stream']);
    // The launcher itself, run as a program (it execs node with its flags: bin/streamctl).
    assert.deepEqual(entrypoint, ['/app/bin/streamctl']);
    const program = entrypoint[0]!.replace(/^\/app\//, REPO);
    const help = await runCli([...cmd, '--help'], {}, 30_000, program);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Usage: streamctl stream/);
    // `status` with exactly the environment compose gives `stream`: an unknown or invalid
    // STREAMCTL_ setting would exit 2; here the hosts do not resolve, so components are down (3).
    const env = composeConfig('docker-compose.yml').services['stream']!.environment!;
    const status = await runCli(['--json', 'status', '--timeout', '3000'], env, 60_000, program);
    assert.equal(status.code, 3, status.stdout + status.stderr);
    const report = JSON.parse(status.stdout) as { components: Record<string, { endpoint: string }> };
    assert.match(report.components['postgres']!.endpoint, /postgres:5432/);
    assert.match(report.components['kafka']!.endpoint, /kafka:9092/);
    assert.match(report.components['redis']!.endpoint, /redis:6379/);
    assert.match(report.components['http']!.endpoint, /receiver:8080/);
    assert.doesNotMatch(status.stdout + status.stderr, /compose-only-secret|compose-only-hmac/, 'secrets never printed');
  });

  it("runs the receiver service's entry point outside Docker: it listens where compose says", async () => {
    const { services } = composeConfig('docker-compose.yml');
    const r = services['receiver']!;
    const port = await freePort();
    const args = r.entrypoint!.slice(1).map((a) => a.replace(/^\/app\//, REPO)).map((a) => (a === '8080' ? String(port) : a === '0.0.0.0' ? '127.0.0.1' : a));
    const child = spawn(process.execPath, args, { env: { PATH: process.env['PATH'], ...r.environment }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => resolve(d.toString()));
        child.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
      });
      assert.match(line, new RegExp(`listening on http://127.0.0.1:${port}`));
    } finally {
      child.kill('SIGTERM');
    }
  });
});
