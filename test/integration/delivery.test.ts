import { type Admin, kafkaClient } from '../../src/core/clients/rdkafka.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { makeRedis } from '../../src/core/clients/redis.js';
import { loadConfig } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { readRow } from '../../src/core/sinks/redis/sink.js';
import { HttpReceiver } from '../../src/receiver/server.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, RECEIVER_KEY, startStream, waitFor } from '../helpers/pipeline.js';
import { unique } from '../helpers/stack.js';
import { runCli } from '../helpers/run-cli.js';

describe('stream --role all: PostgreSQL to Redis, BigQuery and HTTP', { timeout: 180_000 }, () => {
  const table = unique('dl');
  const receiver = new HttpReceiver({ hmacKey: RECEIVER_KEY });
  let db: pg.Client;
  let admin: Admin;
  let redis: Redis;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  let stream: ReturnType<typeof startStream>;

  before(async () => {
    const address = await receiver.listen(0);
    pipeline = isolatedPipeline([`public.${table}`], `http://127.0.0.1:${address.port}/events`);
    const config = loadConfig({ env: pipeline.env });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, name text, amount numeric(12,2), tags text[])`);
    admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
    redis = makeRedis(config.sinks.redis, silentLogger);
    await redis.connect();
    stream = startStream(pipeline.env);
    await waitFor('the stream to start', async () => stream.log.text.includes('capture starting') && stream.log.text.split('sink delivering').length > 3, 60_000);
  });

  after(async () => {
    if (stream?.child.exitCode === null) {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
    const keys = await redis.keys(`${pipeline.tag}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await makeBigQuery(loadConfig({ env: pipeline.env }).sinks.bigquery).dataset(pipeline.tag).delete({ force: true }).catch(() => {});
    await dropPipeline(db, admin, pipeline.tag);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.disconnect();
    await receiver.close();
  });

  it('delivers inserts, updates and deletes to all three sinks; Redis and BigQuery equal PostgreSQL', async () => {
    await db.query(`INSERT INTO ${table} SELECT g, 'n' || g, g * 1.5, ARRAY['a', 'b'] FROM generate_series(1, 60) g`);
    await db.query(`UPDATE ${table} SET name = 'updated', amount = amount + 1 WHERE id <= 10`);
    await db.query(`DELETE FROM ${table} WHERE id > 55`);
    const expectedEvents = 60 + 10 + 5;
    const { rows } = await db.query<{ id: number; name: string; amount: string; tags: string[] }>(`SELECT id, name, amount::text, tags FROM ${table} ORDER BY id`);

    const prefix = `${pipeline.tag}:`;
    await waitFor('Redis to equal PostgreSQL', async () => {
      for (const r of rows) {
        const got = await readRow(redis, prefix, `public.${table}`, { id: r.id });
        if (!got || got['name'] !== r.name || got['amount'] !== r.amount) return false;
      }
      return (await readRow(redis, prefix, `public.${table}`, { id: 56 })) === null;
    });
    const sample = await readRow(redis, prefix, `public.${table}`, { id: 3 });
    assert.deepEqual(sample?.['tags'], ['a', 'b']);
    assert.ok(sample?.['_streamctl'], 'rows carry the processing stamp');

    await waitFor('the HTTP receiver to have every event', async () => (await (await fetch(`http://127.0.0.1:${(receiver as unknown as { server: { address(): { port: number } } }).server.address().port}/_stats`)).json() as { unique_keys: number }).unique_keys >= expectedEvents);

    const bq = makeBigQuery(loadConfig({ env: pipeline.env }).sinks.bigquery);
    const latest = await waitFor('BigQuery to catch up', async () => {
      const [r] = await bq.query({ query: `SELECT row_key, after FROM \`${pipeline.tag}.latest\` WHERE source_table = '${table}' ORDER BY row_key` });
      return r.length === rows.length ? (r as Array<{ row_key: string; after: string }>) : false;
    });
    const byId = new Map(latest.map((r) => [Number((JSON.parse(r.row_key) as { id: number }).id), JSON.parse(r.after) as Record<string, unknown>]));
    for (const r of rows) {
      assert.equal(byId.get(r.id)?.['name'], r.name);
      assert.equal(byId.get(r.id)?.['amount'], r.amount);
    }
    const [once] = await bq.query({ query: `SELECT COUNT(*) AS n FROM \`${pipeline.tag}.changes_once\`` });
    assert.equal(Number((once[0] as { n: number }).n), expectedEvents);
  });

  it('shows each sink caught up and the DLQ depth in status', async () => {
    type Report = { capture: { delivery: { lag: Record<string, number>; dlq_depth: number } } };
    // Caught up means 0: the transaction markers after the last event are committed past too.
    const report = await waitFor('status to show every sink caught up', async () => {
      const r = (JSON.parse((await runCli(['--json', 'status'], pipeline.env)).stdout) as Report).capture.delivery;
      return Object.values(r.lag).every((n) => n === 0) ? r : false;
    }, 30_000);
    assert.deepEqual(Object.keys(report.lag).sort(), ['bigquery', 'http', 'redis']);
    assert.equal(report.dlq_depth, 0);
  });
});
