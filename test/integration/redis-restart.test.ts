import { type Admin, kafkaClient } from '../../src/core/clients/rdkafka.js';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { makeRedis } from '../../src/core/clients/redis.js';
import { loadConfig } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, startStream, waitFor } from '../helpers/pipeline.js';
import { unique } from '../helpers/stack.js';
import { freePort } from '../helpers/ports.js';
import { runCli } from '../helpers/run-cli.js';
import { derivedNames } from '../../src/core/config/names.js';

const STACK = fileURLToPath(new URL('../../../.stack/', import.meta.url));

/**
 * Redis restarted with persistence on, under a running stream. The shared Redis is never
 * touched: this test starts its own redis-server (append-only file) on another loopback
 * port, in a folder of its own under .stack/, stops it mid-stream and starts it again.
 */
describe('a Redis restart (with persistence) under a running stream', { timeout: 240_000 }, () => {
  const table = unique('rrs');
  const dir = join(STACK, unique('faults-redis'));
  let port = 0;
  let server: ChildProcess | undefined;
  let db: pg.Client;
  let admin: Admin;
  let redis: Redis;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  let stream: ReturnType<typeof startStream> | undefined;
  let prefix = '';

  async function startRedis(): Promise<void> {
    server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''], { stdio: 'ignore' });
    const probe = makeRedis({ ...loadConfig({ env: pipeline.env }).sinks.redis }, silentLogger, { failFast: true });
    await waitFor('the private redis-server', async () => {
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        probe.disconnect();
        return false;
      }
    }, 30_000);
    probe.disconnect();
  }

  async function stopRedis(): Promise<void> {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM'); // redis-server writes its append-only file and exits
      await exited(server);
    }
  }

  before(async () => {
    mkdirSync(dir, { recursive: true });
    port = await freePort();
    pipeline = isolatedPipeline([`public.${table}`], 'http://127.0.0.1:9/unused', {
      STREAMCTL_SINKS_REDIS_PORT: String(port),
      STREAMCTL_SINKS_BIGQUERY_ENABLED: 'false',
      STREAMCTL_SINKS_HTTP_ENABLED: 'false',
      STREAMCTL_METRICS_PORT: String(await freePort()),
      STREAMCTL_HEALTH_CHECK_INTERVAL_SECONDS: '1',
    });
    const config = loadConfig({ env: pipeline.env });
    prefix = config.sinks.redis.keyPrefix;
    await startRedis();
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, n int)`);
    admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
    redis = makeRedis(config.sinks.redis, silentLogger, { sink: true });
    redis.on('error', () => {});
    await redis.connect();
  });

  after(async () => {
    if (stream && stream.child.exitCode === null) {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
    redis.disconnect();
    await stopRedis();
    rmSync(dir, { recursive: true, force: true });
    await dropPipeline(db, admin, pipeline.tag);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.disconnect();
  });

  const rows = () => redis.scard(`${prefix}keys:public.${table}`).catch(() => -1);

  it('delivers what changed while Redis was down once it is back, nothing to the DLQ, no rebuild', async (t) => {
    const readyUrl = `http://127.0.0.1:${pipeline.env['STREAMCTL_METRICS_PORT']}/ready`;
    stream = startStream(pipeline.env, 'all');
    await waitFor('/ready', async () => (await fetch(readyUrl)).status === 200, 90_000);
    await db.query(`INSERT INTO ${table} SELECT g, 0 FROM generate_series(1, 100) g`);
    await waitFor('100 rows in Redis', async () => (await rows()) === 100, 60_000);

    const markersKey = `${prefix}gen:${derivedNames(loadConfig({ env: pipeline.env })).consumerGroup('redis')}`;
    const markers = await redis.hgetall(markersKey);
    assert.ok(Object.keys(markers).length > 0, 'the deliverer marked its partitions');

    await stopRedis();
    const logBefore = stream.log.text.length;
    for (let i = 101; i <= 150; i++) await db.query(`INSERT INTO ${table} VALUES ($1, 0)`, [i]);
    await db.query(`UPDATE ${table} SET n = 1 WHERE id <= 10`);
    // Down long enough for the writes to fail and the retries to run out.
    await waitFor('the deliverer to notice Redis is down', async () => /circuit open|retries exhausted|could not/.test(stream!.log.text.slice(logBefore)), 60_000);
    // During the outage: /ready 503 naming redis, and status exit 3 naming it.
    const down = await waitFor('/ready to name redis', async () => {
      const res = await fetch(readyUrl);
      const body = (await res.json()) as { down?: Array<{ component: string; error: string }> };
      return res.status === 503 && (body.down ?? []).some((d) => d.component === 'redis') && body;
    }, 60_000);
    assert.deepEqual(down.down!.map((d) => d.component), ['redis']);
    const status = await runCli(['status', '--timeout', '3000'], { NO_COLOR: '1', ...pipeline.env }, 90_000);
    assert.equal(status.code, 3, status.stdout);
    assert.match(status.stdout, /^Down: redis$/m);
    t.diagnostic(`during the outage: /ready ${JSON.stringify(down.down)}; status exit ${status.code}`);
    await startRedis();

    await waitFor('150 rows in Redis', async () => (await rows()) === 150, 120_000);
    const { rows: pgRows } = await db.query<{ id: number; n: number }>(`SELECT id, n FROM ${table} ORDER BY id`);
    for (const r of pgRows) assert.equal(await redis.hget(`${prefix}row:public.${table}:{"id":${r.id}}`, 'n'), String(r.n), `row ${r.id}`);
    const during = stream.log.text.slice(logBefore);
    assert.doesNotMatch(during, /sending to the DLQ/, 'an outage must not dead-letter the events');
    assert.doesNotMatch(during, /lost its state/, 'a restart with persistence keeps the markers: no rebuild');
    assert.equal(during.match(/redis unreachable: holding its events/g)?.length, 1, 'one line for the outage, not one per retry');
    assert.match(during, /redis reachable again/);
    assert.deepEqual(await redis.hgetall(markersKey), markers, 'the generation markers survived the restart (persistence): no rebuild');
    assert.doesNotMatch(during, /rebuild/i);
    await waitFor('/ready 200 once Redis answers', async () => (await fetch(readyUrl)).status === 200, 60_000);
  });
});
