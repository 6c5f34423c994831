import { type Admin, kafkaClient } from '../../src/core/clients/rdkafka.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { makeRedis } from '../../src/core/clients/redis.js';
import { loadConfig } from '../../src/core/config/index.js';
import { LOCAL_STACK } from '../../src/core/local-stack.js';
import { silentLogger } from '../../src/core/logger.js';
import { HttpReceiver } from '../../src/receiver/server.js';
import { exited } from '../helpers/capturer.js';
import { BIN, runCli } from '../helpers/run-cli.js';
import { alertRules, dashboardQueries, operands } from '../helpers/monitoring.js';
import { dropPipeline, isolatedPipeline, RECEIVER_KEY, startStream, waitFor } from '../helpers/pipeline.js';
import { freePort, startPrometheus, type PrometheusInstance } from '../helpers/prometheus.js';
import { unique } from '../helpers/stack.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The shipped monitoring against the real thing: `streamctl stream` on an isolated pipeline
 * with a small workload (rows to Redis and HTTP, then HTTP failing until its circuit opens
 * and an event is dead-lettered), a real Prometheus scraping it, and every dashboard query
 * and every operand of every alert rule run through Prometheus' query API. Each must return
 * a series: a metric or label renamed in code leaves one empty.
 */
describe('monitoring: the dashboard and the alert rules against a real Prometheus scraping stream', { timeout: 240_000 }, () => {
  const table = unique('mon');
  const receiver = new HttpReceiver({ hmacKey: RECEIVER_KEY });
  let db: pg.Client;
  let admin: Admin;
  let redis: Redis;
  let prometheus: PrometheusInstance;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  let stream: ReturnType<typeof startStream>;

  before(async () => {
    const address = await receiver.listen(0);
    const receiverUrl = `http://127.0.0.1:${address.port}`;
    const metricsPort = await freePort();
    pipeline = isolatedPipeline([`public.${table}`], `${receiverUrl}/events`, {
      STREAMCTL_METRICS_PORT: String(metricsPort),
      STREAMCTL_SINKS_BIGQUERY_ENABLED: 'false',
      STREAMCTL_SINKS_HTTP_RETRY_RETRIES: '1',
      STREAMCTL_SINKS_HTTP_RETRY_INITIAL_DELAY_MS: '50',
      STREAMCTL_SINKS_HTTP_RETRY_MAX_DELAY_MS: '100',
      STREAMCTL_SINKS_HTTP_BREAKER_CONSECUTIVE_FAILURES: '1',
      // Stays open while the queries run: the circuit rule needs an open circuit to say anything.
      STREAMCTL_SINKS_HTTP_BREAKER_HALF_OPEN_AFTER_MS: '600000',
      STREAMCTL_SINKS_HTTP_TIMEOUT_MS: '1000',
      STREAMCTL_DELIVERY_LAG_INTERVAL_MS: '300',
      // The smallest limit, so one row of the workload becomes an oversize marker.
      STREAMCTL_KAFKA_MAX_RECORD_BYTES: '65536',
    });
    const config = loadConfig({ env: pipeline.env });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
    redis = makeRedis(config.sinks.redis, silentLogger);
    await redis.connect();
    stream = startStream(pipeline.env);
    await waitFor('the stream to start', async () => stream.log.text.includes('capture starting') && stream.log.text.includes('sink delivering'));
    prometheus = await startPrometheus(`127.0.0.1:${metricsPort}`);

    // The workload: rows both sinks take, one row over kafka.maxRecordBytes (a marker, in the
    // DLQ of each sink), then HTTP fails every request: retries, DLQ, open circuit.
    await db.query(`INSERT INTO ${table} SELECT g, 'row ' || g FROM generate_series(1, 50) g`);
    await db.query(`INSERT INTO ${table} VALUES (51, repeat('x', 100000))`);
    await waitFor('HTTP to receive 50 rows', async () => ((await (await fetch(`${receiverUrl}/_stats`)).json()) as { unique_keys: number }).unique_keys >= 50);
    await fetch(`${receiverUrl}/_control`, { method: 'POST', body: JSON.stringify({ rates: { '5xx': 1 } }) });
    await db.query(`UPDATE ${table} SET v = 'failing' WHERE id = 1`);
  });

  after(async () => {
    if (stream?.child.exitCode === null) {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
    await prometheus?.stop();
    await dropPipeline(db, admin, pipeline.tag);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    const keys = await redis.keys(`${pipeline.tag}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await db.end();
    await admin.disconnect();
    await receiver.close();
  });

  it('loads every shipped alert rule, and all of them evaluate without error', async () => {
    const rules = await waitFor('the rules to be evaluated', async () => {
      const body = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
      const all = body.data.groups.flatMap((g) => g.rules);
      return all.every((r) => r.health !== 'unknown') && all;
    });
    assert.deepEqual(rules.map((r) => r.name).sort(), alertRules().map((r) => r.alert).sort());
    assert.deepEqual(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`), []);
  });

  it("the stack's own Prometheus (scripts/stack) is ready, with the shipped rules loaded", async () => {
    assert.ok((await fetch(`${LOCAL_STACK.prometheus.url}/-/ready`)).ok);
    const body = (await (await fetch(`${LOCAL_STACK.prometheus.url}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string }> }> } };
    assert.deepEqual(body.data.groups.flatMap((g) => g.rules.map((r) => r.name)).sort(), alertRules().map((r) => r.alert).sort());
  });

  it('every dashboard query and every operand of every alert rule returns a series while the workload runs', async () => {
    const queries = [
      ...dashboardQueries().map((q) => ({ where: `panel "${q.panel}"`, expr: q.expr })),
      ...alertRules().flatMap((r) => operands(r.expr).map((expr) => ({ where: `alert ${r.alert}`, expr }))),
    ];
    assert.ok(queries.length > 30, `${queries.length} queries`);
    // The workload produces every series within seconds; the wait is a bound, not a measurement.
    let empty: string[] = [];
    await waitFor(
      'every query to return a series',
      async () => {
        empty = [];
        for (const q of queries) if ((await prometheus.query(q.expr)).length === 0) empty.push(`${q.where}: ${q.expr}`);
        return empty.length === 0;
      },
      90_000,
    ).catch(() => {});
    assert.deepEqual(empty, []);
  });

  it('status shows the HTTP circuit open and for how long, read from the stream it asks', async () => {
    const r = await runCli(['--json', 'status', '--timeout', '10000'], pipeline.env);
    const report = JSON.parse(r.stdout) as { circuits: { source: string; sinks: Array<{ sink: string; state: string; open_seconds: number | null }> } };
    assert.equal(report.circuits.source, `http://127.0.0.1:${pipeline.env['STREAMCTL_METRICS_PORT']}/metrics`);
    const bySink = Object.fromEntries(report.circuits.sinks.map((s) => [s.sink, s]));
    assert.equal(bySink['http']?.state, 'open');
    assert.ok((bySink['http']?.open_seconds ?? -1) >= 0);
    assert.deepEqual(bySink['redis'], { sink: 'redis', state: 'closed', open_seconds: null });
    const text = await runCli(['status', '--timeout', '10000'], pipeline.env);
    assert.match(text.stdout, /circuits {2}redis closed, http open for \d+s/);
  });

  it('status --watch on a terminal redraws in place (no screen clear per check), and appends when piped', async () => {
    // SIGINT once the output shows two checks, however long a check takes on this machine
    // (a fixed `timeout 5` saw a single frame under load). The shell writes its pid, then
    // execs the watch, so the signal reaches streamctl itself, inside script(1)'s terminal.
    const watchUntil = async (tty: boolean, enough: (out: string) => boolean): Promise<string> => {
      const pidFile = path.join(tempDir('streamctl-watch-'), 'pid');
      const watch = `echo $$ > ${pidFile}; exec ${process.execPath} ${BIN} status --watch 1 --timeout 10000`;
      const argv = tty ? ['-qec', `sh -c '${watch}'`, '/dev/null'] : ['-c', watch];
      const child = spawn(tty ? 'script' : 'sh', argv, { env: { ...process.env, ...pipeline.env, TERM: 'xterm' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor('two checks on the watch', async () => enough(out) || child.exitCode !== null, 60_000).catch(() => {});
      process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGINT');
      await exited(child);
      return out;
    };
    const frameCount = (out: string) => out.split('\x1b[H').length - 1;
    const tty = await watchUntil(true, (out) => frameCount(out) >= 2);
    assert.ok(frameCount(tty) >= 2, `${frameCount(tty)} frames`);
    assert.equal(tty.split('\x1b[2J').length - 1, 1, 'the screen is cleared once, at the start');
    assert.match(tty, /\x1b\[\?25h/, 'the cursor is shown again on exit');
    const checks = (out: string) => out.split('streamctl status at').length - 1;
    const piped = await watchUntil(false, (out) => checks(out) >= 2);
    assert.doesNotMatch(piped, /\x1b\[/);
    assert.ok(checks(piped) >= 2, `${checks(piped)} checks`);
  });

  it('sees the workload in the numbers: the HTTP circuit open, an event dead-lettered, both sinks delivered, this pipeline\'s slot', async () => {
    const one = async (expr: string) => Number((await prometheus.query(expr))[0]?.value[1]);
    assert.equal(await one('max by (sink) (circuit_state{sink="http"})'), 1);
    assert.ok((await one('sum(dlq_events_total{sink="http"})')) >= 1);
    assert.ok((await one(`sum(streamctl_oversize_events_total{table="public.${table}"})`)) >= 1);
    assert.ok((await one('sum(dlq_events_total{sink="redis",class="oversize"})')) >= 1);
    assert.ok((await one('sum(events_processed_total{sink="redis"})')) >= 50);
    assert.ok((await one('sum(events_processed_total{sink="http"})')) >= 50);
    // The monitor measures this pipeline's own slot (whether it is active yet depends on when its
    // first 30 s measurement ran).
    assert.equal((await prometheus.query(`streamctl_replication_slot_retained_wal_bytes{slot="streamctl_${pipeline.tag}"}`)).length, 1);
  });
});
