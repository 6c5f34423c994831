import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { makeRedis } from '../../src/core/clients/redis.js';
import { silentLogger } from '../../src/core/logger.js';
import { sign } from '../../src/core/sinks/http/signature.js';
import type { StressReport } from '../../src/core/stress/report.js';
import { RECEIVER_KEY } from '../helpers/pipeline.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { stackConfig, unique } from '../helpers/stack.js';

/**
 * `stress-test --spawn` on the real stack: each run starts its own isolated pipeline (own
 * slot, topics, Redis prefix, BigQuery dataset, table, and its own HTTP receiver in the
 * command's process) and drops it at the end. Short, low-rate runs: the figures are not
 * asserted (no timed assertions), the verdicts and counts are.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const dir = mkdtempSync(path.join(os.tmpdir(), 'stress-test-'));
const env = { STREAMCTL_SINKS_HTTP_HMAC_KEY: RECEIVER_KEY, STREAMCTL_SINKS_HTTP_HMAC_KEY_FILE: '', STREAMCTL_LOG_LEVEL: 'warn' };
const short = ['stress-test', '--spawn', '--rate', '100', '--duration', '4', '--warmup', '1', '--tx-size', '5', '--drain-timeout', '90'];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const report = (file: string): StressReport => JSON.parse(readFileSync(file, 'utf8')) as StressReport;
const explain = (r: CliResult) => `exit ${r.code}\nstdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-3000)}`;

/** Polls the command's own receiver until it has accepted an event; returns it (fails at once if the command ended). */
async function firstAccepted(port: number, run: Promise<CliResult>): Promise<unknown> {
  let ended: CliResult | null = null;
  void run.then((r) => (ended = r));
  for (let i = 0; i < 600; i++) {
    if (ended) throw new Error(`stress-test ended before its receiver accepted an event: ${explain(ended)}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/_recent?n=1`);
      const { recent } = (await res.json()) as { recent: unknown[] };
      if (recent.length > 0) return recent[0];
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the receiver never accepted an event');
}

/** Waits until a key matching the pattern exists in Redis (the spawned pipeline's prefix is its own); fails at once if the command ended. */
async function firstRowKey(redis: ReturnType<typeof makeRedis>, pattern: string, run: Promise<CliResult>): Promise<string> {
  let ended: CliResult | null = null;
  void run.then((r) => (ended = r));
  for (let i = 0; i < 1200; i++) {
    if (ended) throw new Error(`stress-test ended before ${pattern} appeared: ${explain(ended)}`);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
      if (keys[0]) return keys[0];
      cursor = next;
    } while (cursor !== '0');
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${pattern} never appeared in Redis`);
}

after(() => rmSync(dir, { recursive: true, force: true }));

describe('stress-test --spawn on the real stack', () => {
  it('a short run over all three sinks passes its SLOs, exits 0, and its JSON report validates against the schema', async () => {
    const file = path.join(dir, 'pass.json');
    const html = path.join(dir, 'pass.html');
    const r = await runCli([...short, '--workload', 'mixed', '--key-change-share', '0', '--toast-share', '0.1', '--slo', 'p99<10m,loss=0,dup=0,order=0,dlq=0', '--report', file, '--report-html', html], env, 300_000);
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /SLOs met/);
    const rep = report(file);
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormatsModule.default(ajv);
    const validate = ajv.compile(JSON.parse(readFileSync(path.join(ROOT, 'schemas/stress-report.v1.schema.json'), 'utf8')));
    assert.ok(validate(rep), JSON.stringify(validate.errors, null, 2));
    assert.deepEqual(Object.keys(rep.sinks).sort(), ['bigquery', 'http', 'redis']);
    for (const [sink, s] of Object.entries(rep.sinks)) {
      assert.equal(s.counts?.lost, 0, `${sink} lost events`);
      assert.ok(s.latency.count > 0, `${sink} measured no latency`);
      assert.ok(s.counts!.expected > 0, `${sink} expected nothing`);
    }
    assert.equal(rep.sinks['http']!.counts!.expected, rep.load.committed_events);
    assert.equal(rep.sinks['bigquery']!.counts!.expected, rep.load.committed_events);
    assert.ok(rep.load.large_values > 0, 'the run wrote large TOASTed values');
    assert.ok(rep.machine.processes.some((p) => p.name === 'stream'), 'CPU of the stream process is reported');
    // What the host took (a virtual machine's steal) is part of what shared the machine.
    assert.ok(typeof rep.machine.steal_percent === 'number' && rep.machine.steal_percent >= 0 && rep.machine.steal_percent <= 100, `steal: ${rep.machine.steal_percent}`);
    // After the drain verify compared the load table's final state: equal in Redis and BigQuery; HTTP keeps no state.
    assert.equal(rep.settings.verify, true);
    for (const sink of ['redis', 'bigquery']) {
      const v = rep.sinks[sink]!.verify;
      assert.ok(v && !('not_run' in v), `${sink} verify: ${JSON.stringify(v)}`);
      assert.equal(v.equal, true, `${sink} verify: ${JSON.stringify(v)}`);
      assert.equal(v.persistent, 0);
      assert.ok(v.rows_compared > 0, `${sink} verify compared no rows`);
    }
    assert.equal(rep.sinks['http']!.verify, undefined);
    assert.ok(rep.slo.results.some((x) => x.sink === 'redis' && x.metric === 'loss' && x.from === 'verify' && x.ok && x.actual === 0), 'loss=0 checked against verify');
    assert.match(r.stdout, /^redis: .* verify=equal$/m);
    assert.match(r.stdout, /^ {2}bigquery verify \(final state, rows\): \d+ rows compared in [\d.]+ s; equal: missing 0, extra 0, differing 0/m);

    // The HTML report renders in headless Chromium: the script ran and drew the plots.
    const chromium = execFileSync('bash', [path.join(ROOT, 'scripts/chromium')], { encoding: 'utf8' }).trim();
    const profile = mkdtempSync(path.join(os.tmpdir(), 'stress-chromium-'));
    try {
      const dom = execFileSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--dump-dom', `file://${html}`], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'ignore'] });
      assert.match(dom, /<body[^>]*data-rendered="true"/, 'the page script did not finish');
      const plot = /<svg id="percentile-plot"[^>]*data-points="(\d+)"/.exec(dom);
      assert.ok(plot && Number(plot[1]) > 10, `percentile plot has ${plot?.[1]} points`);
      assert.equal((dom.match(/<polyline[^>]*data-series="(redis|bigquery|http)"/g) ?? []).length, 3, 'one percentile line per sink');
      assert.equal((dom.match(/<td>equal, \d+ rows, transient \d+<\/td>/g) ?? []).length, 2, 'the sinks table shows verify equal for Redis and BigQuery');
      const timeline = /<svg id="timeline-plot"[^>]*data-points="(\d+)"/.exec(dom);
      assert.ok(timeline && Number(timeline[1]) > 0, 'timeline plot drawn');
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  });

  describe('an impossible SLO and a planted duplicate', () => {
    let r: CliResult;
    let rep: StressReport;
    before(async () => {
      const port = await freePort();
      const file = path.join(dir, 'fail.json');
      // Layout split: capture, and a deliverer for the HTTP sink alone (stream --role deliver --sink http).
      const run = runCli([...short, '--sinks', 'http', '--layout', 'split', '--http-receiver', String(port), '--slo', 'p99<1ms,loss=0,dup=0', '--report', file, '--json'], env, 300_000);
      // A duplicated delivery: an event the receiver already processed, sent again under another key.
      const event = await firstAccepted(port, run);
      const body = JSON.stringify(event);
      const res = await fetch(`http://127.0.0.1:${port}/events`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', 'x-streamctl-signature': sign(RECEIVER_KEY, body), 'idempotency-key': 'planted-duplicate' },
      });
      assert.equal(res.status, 200);
      r = await run;
      rep = report(file);
    });

    it('p99<1ms exits 3 and names the miss and by how much', () => {
      assert.equal(r.code, 3, explain(r));
      const doc = JSON.parse(r.stdout) as StressReport;
      assert.equal(doc.ok, false);
      assert.ok(doc.slo.missed.some((m) => /^http p99 [\d.]+ ms misses p99<1ms \(by [\d.]+ ms\)$/.test(m)), doc.slo.missed.join('\n'));
    });

    it('ran capture and one deliverer per sink', () => {
      assert.deepEqual(rep.machine.processes.map((p) => p.name).slice(1), ['capture', 'deliver-http']);
    });

    it('counts the duplicated delivery, and nothing is lost', () => {
      assert.equal(rep.sinks['http']!.counts!.duplicates, 1);
      assert.equal(rep.sinks['http']!.counts!.lost, 0);
      assert.ok(rep.slo.missed.includes('http dup 1 events misses dup=0 (by 1 events)'), rep.slo.missed.join('\n'));
    });
  });

  it('with the HTTP sink down mid-run, the report shows the loss while it is down, and the drain brings loss to 0', async () => {
    const port = await freePort();
    const file = path.join(dir, 'outage.json');
    // 1000 retries (the most the config takes; backoff up to 10 s): while the receiver answers 503 nothing goes to the DLQ, it waits.
    const run = runCli([...short, '--duration', '8', '--sinks', 'http,redis', '--http-receiver', String(port), '--slo', 'loss=0,dlq=0', '--no-verify', '--report', file], { ...env, STREAMCTL_SINKS_HTTP_RETRY_RETRIES: '1000' }, 300_000);
    await firstAccepted(port, run);
    const control = (plan: unknown) => fetch(`http://127.0.0.1:${port}/_control`, { method: 'POST', body: JSON.stringify(plan), headers: { 'content-type': 'application/json' } });
    assert.equal((await control({ rates: { '5xx': 1 } })).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    assert.equal((await control({ rates: {} })).status, 200);
    const r = await run;
    assert.equal(r.code, 0, explain(r));
    const rep = report(file);
    const missing = rep.timeline.map((p) => p.missing['http'] ?? 0);
    // 4 s down at 100 events/s: well over 200 events missing at the worst sample.
    assert.ok(Math.max(...missing) >= 200, `http missing over time: ${missing.join(' ')}`);
    assert.equal(missing.at(-1), 0, 'missing at the end of the drain');
    assert.equal(rep.sinks['http']!.counts!.lost, 0);
    assert.equal(rep.sinks['http']!.counts!.dlq, 0);
    assert.equal(rep.sinks['redis']!.counts!.lost, 0);
    // --no-verify: no final-state comparison, loss is the per-event count alone.
    assert.equal(rep.settings.verify, false);
    assert.equal(rep.sinks['redis']!.verify, null);
    assert.ok(!rep.slo.results.some((x) => x.from === 'verify'));
  });

  it('--kill-deliverer-every: deliverers SIGKILLed and restarted under load, every event counted once in every sink', async () => {
    const file = path.join(dir, 'kill.json');
    // The HTTP deliverer is killed first (sinks in the order given); a restart takes seconds (the group rejoins).
    const r = await runCli([...short, '--duration', '10', '--layout', 'split', '--sinks', 'http,redis', '--workload', 'mixed', '--kill-deliverer-every', '2',
      '--slo', 'loss=0,dup=0,order=0,dlq=0', '--report', file], env, 300_000);
    assert.equal(r.code, 0, explain(r));
    const rep = report(file);
    assert.ok(rep.faults.deliverer_kills >= 1, 'no deliverer was killed');
    const first = rep.faults.killed[0]!;
    assert.equal(first.name, 'deliver-http');
    const now = rep.machine.processes.find((p) => p.name === 'deliver-http')!;
    assert.notEqual(now.pid, first.pid, 'the HTTP deliverer at the end is a new process');
    for (const sink of ['redis', 'http']) {
      const c = rep.sinks[sink]!.counts!;
      assert.equal(c.lost, 0, `${sink} lost`);
      assert.equal(c.unexpected, 0, `${sink} unexpected`);
      assert.ok(c.expected > 0);
    }
    assert.equal(rep.sinks['http']!.counts!.duplicates, 0);
    assert.equal(rep.sinks['http']!.counts!.expected, rep.load.committed_events);
    const v = rep.sinks['redis']!.verify;
    assert.ok(v && !('not_run' in v) && v.equal, `redis final state after the kills: ${JSON.stringify(v)}`);
  });

  it('verify after the drain: a Redis row changed behind the pipeline\'s back is a loss the event count cannot see (exit 3, named)', async () => {
    const table = unique('wire_planted');
    const file = path.join(dir, 'planted.json');
    const config = stackConfig();
    const redis = makeRedis(config.sinks.redis, silentLogger);
    await redis.connect();
    try {
      // Inserts only: row 1 (the load's first) is never written again once it is in Redis.
      const run = runCli([...short, '--sinks', 'redis', '--workload', 'insert', '--table', `streamctl_stress.${table}`, '--slo', 'loss=0', '--report', file], env, 300_000);
      const key = await firstRowKey(redis, `*:row:streamctl_stress.${table}:{"id":"1"}`, run);
      // Its payload changed, its ev left as it is: the observer, which reads ev, still counts the row as delivered.
      await redis.hset(key, 'payload', JSON.stringify('changed behind the pipeline\'s back'));
      const r = await run;
      assert.equal(r.code, 3, explain(r));
      const rep = report(file);
      assert.equal(rep.sinks['redis']!.counts!.lost, 0, 'the event count sees no loss');
      const v = rep.sinks['redis']!.verify;
      assert.ok(v && !('not_run' in v), JSON.stringify(v));
      assert.equal(v.equal, false);
      assert.deepEqual([v.missing, v.extra, v.differing, v.persistent], [0, 0, 1, 1]);
      assert.equal(v.confirmed, true);
      assert.deepEqual(v.examples, [{ kind: 'differs', key: '{"id":"1"}', columns: ['payload'] }]);
      assert.deepEqual(rep.slo.missed, ['redis verify: 1 row in a final state different from PostgreSQL, misses loss=0 (by 1 rows)']);
      assert.match(r.stdout, /verify=unequal:1/);
      assert.match(r.stdout, /redis verify \(final state, rows\): \d+ rows compared .*NOT equal: missing 0, extra 0, differing 1.*e\.g\. differs \{"id":"1"\} \(payload\)/);
    } finally {
      await redis.quit();
    }
  });

  it('against a running pipeline that does not capture the load table: exit 4 with the fix', async () => {
    const r = await runCli(['stress-test', '--rate', '10', '--duration', '1', '--sinks', 'redis'], { STREAMCTL_PIPELINE_ID: `stress_none_${Date.now()}` }, 60_000);
    assert.equal(r.code, 4, explain(r));
    assert.match(r.stderr, /publication streamctl_stress_none_\d+ does not exist/);
    assert.match(r.stderr, /--spawn/);
  });
});
