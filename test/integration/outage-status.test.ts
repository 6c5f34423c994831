import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { type Admin, kafkaClient } from '../../src/core/clients/rdkafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { loadConfig } from '../../src/core/config/index.js';
import { LOCAL_STACK } from '../../src/core/local-stack.js';
import { silentLogger } from '../../src/core/logger.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, RECEIVER_KEY, startStream, waitFor } from '../helpers/pipeline.js';
import { freePort } from '../helpers/ports.js';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

type Part = 'postgres' | 'kafka' | 'redis' | 'bigquery' | 'http';
const PARTS: Part[] = ['postgres', 'kafka', 'redis', 'bigquery', 'http'];
const bq = new URL(LOCAL_STACK.bigquery.apiEndpoint);
const http = new URL(LOCAL_STACK.http.url);

/** The setting that points one part at `host:port` (the rest stays on the shared stack). */
function pointAt(part: Part, port: number): Record<string, string> {
  switch (part) {
    case 'postgres':
      return { STREAMCTL_POSTGRES_PORT: String(port) };
    case 'kafka':
      return { STREAMCTL_KAFKA_BROKERS: `127.0.0.1:${port}` };
    case 'redis':
      return { STREAMCTL_SINKS_REDIS_PORT: String(port) };
    case 'bigquery':
      return { STREAMCTL_SINKS_BIGQUERY_API_ENDPOINT: `http://127.0.0.1:${port}` };
    case 'http':
      return { STREAMCTL_SINKS_HTTP_URL: `http://127.0.0.1:${port}${http.pathname}`, STREAMCTL_SINKS_HTTP_HMAC_KEY: RECEIVER_KEY, STREAMCTL_SINKS_HTTP_HMAC_KEY_FILE: '' };
  }
}

/**
 * A part that does not answer is a part that is down, and `status` must say which (exit 3).
 * `status` alone: the part's setting points at a loopback port where nothing listens. For
 * status that is the same condition as a stopped server: every probe opens a new
 * connection, and a stopped server's port refuses it exactly so (ECONNREFUSED). The shared
 * servers are never stopped (other engineers' tests run on them).
 * A running `stream`: it reaches the part through a TCP forwarder (test/helpers/tcp-proxy.ts)
 * that the test cuts (port closed, connections reset) and restores, which is what the
 * stream's connections see when the server stops and starts again. For Kafka only the
 * bootstrap address goes through it (the broker advertises its own address, which clients
 * then use directly), so there the cut is what a new connection sees, as status's probe does;
 * the stream's data connections stay up (the `faults` tests restart a private broker).
 * Redis is stopped for real (a private redis-server) in redis-restart.test.ts.
 */
describe('status and /ready name the part that is down', { timeout: 600_000 }, () => {
  const table = unique('outage');
  let db: pg.Client;
  let admin: Admin;
  const tags: string[] = [];

  before(async () => {
    const config = loadConfig({ env: {} });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, n int)`);
    admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
  });

  after(async () => {
    for (const tag of tags) await dropPipeline(db, admin, tag);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.disconnect();
  });

  for (const part of PARTS) {
    it(`status alone: ${part} at a port where nothing listens is down, named, exit 3`, async () => {
      const dead = await freePort();
      const env = pointAt(part, dead);
      const text = await runCli(['status', '--timeout', '3000'], { NO_COLOR: '1', ...env }, 90_000);
      assert.equal(text.code, 3, text.stdout + text.stderr);
      assert.match(text.stdout, new RegExp(`^Down: ${part}$`, 'm'), text.stdout);
      const json = await runCli(['--json', 'status', '--timeout', '3000'], env, 90_000);
      assert.equal(json.code, 3);
      const report = JSON.parse(json.stdout) as { ok: boolean; components: Record<Part, { state: string; endpoint: string; error?: string }> };
      assert.equal(report.ok, false);
      for (const other of PARTS) assert.equal(report.components[other].state, other === part ? 'down' : 'up', other);
      assert.match(report.components[part].endpoint, new RegExp(String(dead)));
      assert.ok(report.components[part].error, 'the error says why');
    });
  }

  /** What a stream of `role` using only `sinks` answers on /ready while `part` is cut, and after. */
  async function readyThroughOutage(part: Exclude<Part, 'redis'> | 'redis', target: { host: string; port: number }, role: string, sinks: Part[]): Promise<void> {
    const proxy = new TcpProxy(target.host, target.port);
    const port = await proxy.open();
    const metricsPort = await freePort();
    const enabled = (s: Part) => String(sinks.includes(s));
    const pipeline = isolatedPipeline([`public.${table}`], LOCAL_STACK.http.url, {
      STREAMCTL_METRICS_PORT: String(metricsPort),
      STREAMCTL_HEALTH_CHECK_INTERVAL_SECONDS: '1',
      STREAMCTL_SINKS_REDIS_ENABLED: enabled('redis'),
      STREAMCTL_SINKS_BIGQUERY_ENABLED: enabled('bigquery'),
      STREAMCTL_SINKS_HTTP_ENABLED: enabled('http'),
      ...pointAt(part, port),
    });
    tags.push(pipeline.tag);
    const stream = startStream(pipeline.env, role);
    const url = `http://127.0.0.1:${metricsPort}/ready`;
    const ready = async () => {
      const res = await fetch(url);
      return { status: res.status, body: (await res.json()) as { down?: Array<{ component: string; error: string }> } };
    };
    try {
      await waitFor(`${part}: /ready 200 before the outage`, async () => (await ready()).status === 200, 120_000);
      await proxy.cut();
      const during = await waitFor(`${part}: /ready 503 naming it`, async () => {
        const r = await ready();
        return r.status === 503 && (r.body.down ?? []).length > 0 && r;
      }, 60_000);
      assert.deepEqual(
        during.body.down!.map((d) => d.component),
        [part],
        JSON.stringify(during.body),
      );
      // status during the outage, with the stream's own settings: names it, exit 3.
      const status = await runCli(['status', '--timeout', '3000'], { NO_COLOR: '1', ...pipeline.env }, 90_000);
      assert.equal(status.code, 3, status.stdout);
      assert.match(status.stdout, new RegExp(`^Down: ${part}$`, 'm'));
      await proxy.restore();
      await waitFor(`${part}: /ready 200 once it answers again`, async () => (await ready()).status === 200, 120_000);
      // PostgreSQL and Kafka outages are told once per process by whoever saw them first
      // (outages.ts: "kafka unreachable since ..."); the sinks' by the watch ("bigquery is down").
      const server = part === 'postgres' || part === 'kafka';
      const down = server ? `(${part} is down|${part} unreachable since)` : `${part} is down`;
      const back = server ? `(${part} answers again|${part} reachable again after)` : `${part} answers again`;
      const downLines = stream.log.text.split('\n').filter((l) => / (WARN|ERROR) /.test(l) && new RegExp(down).test(l));
      assert.equal(downLines.length, 1, `one line for the outage:\n${downLines.join('\n')}`);
      assert.match(stream.log.text, new RegExp(back));
    } finally {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
      await proxy.cut();
    }
  }

  it('a running stream: Kafka cut, /ready 503 naming kafka, then ready again', () =>
    readyThroughOutage('kafka', { host: '127.0.0.1', port: Number(LOCAL_STACK.kafka.brokers[0].split(':')[1]) }, 'deliver', ['redis']));

  it('a running stream: PostgreSQL cut under capture, /ready 503 naming postgres, then ready again', () =>
    readyThroughOutage('postgres', { host: LOCAL_STACK.postgres.host, port: LOCAL_STACK.postgres.port }, 'capture', []));

  it('a deliver-only stream: PostgreSQL cut, /ready stays 200 (delivery does not need it), the log still says so', async () => {
    const proxy = new TcpProxy(LOCAL_STACK.postgres.host, LOCAL_STACK.postgres.port);
    const port = await proxy.open();
    const metricsPort = await freePort();
    const pipeline = isolatedPipeline([`public.${table}`], LOCAL_STACK.http.url, {
      STREAMCTL_METRICS_PORT: String(metricsPort),
      STREAMCTL_HEALTH_CHECK_INTERVAL_SECONDS: '1',
      STREAMCTL_SINKS_BIGQUERY_ENABLED: 'false',
      STREAMCTL_SINKS_HTTP_ENABLED: 'false',
      ...pointAt('postgres', port),
    });
    tags.push(pipeline.tag);
    const stream = startStream(pipeline.env, 'deliver');
    const url = `http://127.0.0.1:${metricsPort}/ready`;
    try {
      await waitFor('/ready 200 before the outage', async () => (await fetch(url)).status === 200, 120_000);
      await proxy.cut();
      // The slot measurement (every 30 s, metrics/monitor.ts) is what reaches PostgreSQL here.
      await waitFor('the deliverer sees PostgreSQL gone', async () => /postgres unreachable since/.test(stream.log.text), 90_000);
      const res = await fetch(url);
      const body = (await res.json()) as { down?: Array<{ component: string }> };
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.deepEqual(body.down ?? [], []);
    } finally {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
      await proxy.cut();
    }
  });

  it('a running stream: BigQuery cut, /ready 503 naming bigquery, then ready again', () =>
    readyThroughOutage('bigquery', { host: bq.hostname, port: Number(bq.port) }, 'deliver', ['bigquery']));

  it('a running stream: the HTTP endpoint cut, /ready 503 naming http, then ready again', () =>
    readyThroughOutage('http', { host: http.hostname, port: Number(http.port) }, 'deliver', ['http']));
});
