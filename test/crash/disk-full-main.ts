import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { exited } from '../helpers/capturer.js';
import { judgeSinks, SteadyWriter, startFaultPipeline } from '../helpers/fault-pipeline.js';
import { startStream, waitFor } from '../helpers/pipeline.js';
import { freePort } from '../helpers/ports.js';

/**
 * `npm run fault:disk` (a manual proof, not in the suite: it mounts a tmpfs, which needs
 * root and CAP_SYS_ADMIN, refused in most CI containers, and a mount left by a killed run
 * outlives it). The private Kafka's data lives on a 256 MiB tmpfs; under a steady writer the
 * disk is filled until the broker's writes fail (Kafka takes a failed log dir offline and,
 * with its only one gone, shuts down). The pipeline must stop making progress, say why in
 * one line, be not ready, and once space returns (the filler deleted, the broker started
 * again) carry on with nothing lost. Last line: one JSON object; exit 1 unless clean.
 */
const say = (line: string) => process.stderr.write(`fault:disk ${line}\n`);
const probe = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', '/nonexistent-mount-probe'], { encoding: 'utf8' });
if (process.getuid?.() !== 0 || /permission|not permitted|only root/i.test(probe.stderr)) {
  say(`cannot mount a tmpfs here (${probe.stderr.trim() || 'not root'}): this proof needs root with CAP_SYS_ADMIN`);
  process.exit(4);
}

let mountPoint = '';
const metricsPort = await freePort();
const p = await startFaultPipeline(
  { STREAMCTL_METRICS_PORT: String(metricsPort) },
  {
    kafkaDataDir: async (dir) => {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', dir]);
      mountPoint = dir;
    },
  },
);
const filler = path.join(mountPoint, 'filler');
const stream = startStream(p.env, 'all', path.join(process.cwd(), '.scratch', `fault-disk-${p.tag}.log`));
const writer = new SteadyWriter(p.config, p.table);
let verdict;
const outage = { lines: 0, notReady: false, kafkaStopped: false, recovered: false };
try {
  const ready = `http://127.0.0.1:${metricsPort}/ready`;
  await waitFor('/ready', async () => (await fetch(ready)).status === 200, 120_000);
  writer.start(200);
  await waitFor('changes flowing', async () => writer.succeeded > 500, 120_000);
  const from = stream.log.text.length;
  say('filling the broker\'s disk');
  const fd = openSync(filler, 'w');
  const chunk = Buffer.alloc(1 << 20, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    say(`disk full: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
  await waitFor('the broker to fail on the full disk', async () => !p.kafka.running, 300_000);
  outage.kafkaStopped = true;
  await waitFor('the pipeline to say so', async () => /kafka unreachable since/.test(stream.log.text.slice(from)), 120_000);
  outage.notReady = await waitFor('/ready to turn 503', async () => (await fetch(ready)).status === 503, 60_000);
  say(`kafka log: ${/No space left on device|Shutdown broker because all log dirs/.exec(p.kafka.logTail(200_000))?.[0] ?? 'no disk error found'}`);
  rmSync(filler);
  say('space is back; starting the broker again');
  await p.kafka.restart();
  await waitFor('/ready again', async () => (await fetch(ready)).status === 200, 300_000);
  outage.recovered = true;
  const log = stream.log.text.slice(from);
  outage.lines = log.split('\n').filter((l) => /\b(WARN|ERROR)\b/.test(l)).length;
  await writer.stop();
  verdict = await judgeSinks(p, 300_000, say);
} finally {
  await writer.stop();
  if (stream.child.exitCode === null) stream.child.kill('SIGTERM');
  await exited(stream.child);
  await p.kafka.stop('SIGKILL');
  if (mountPoint) spawnSync('umount', ['-l', mountPoint]);
  await p.destroy();
}
say(`problems: ${JSON.stringify(verdict.problems)}; warnings and errors during the outage: ${outage.lines}`);
const out = { events: verdict.events, sinks: verdict.sinks, redis_matches_postgres: verdict.redis_matches_postgres, bigquery_latest_matches_postgres: verdict.bigquery_latest_matches_postgres, outage };
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exitCode = verdict.problems.length === 0 && outage.notReady && outage.recovered ? 0 : 1;
