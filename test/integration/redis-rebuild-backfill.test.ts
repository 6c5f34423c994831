import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { derivedNames } from '../../src/core/config/names.js';
import { loadConfig } from '../../src/core/config/index.js';
import { readRow } from '../../src/core/sinks/redis/sink.js';
import { startStream, waitFor } from '../helpers/pipeline.js';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';
import { deleteKeysUnder, openRedisOnlyPipeline, type RedisOnlyPipeline } from '../helpers/redis-keys.js';

/**
 * Redis comes back empty (this pipeline's keys deleted) when the changes topic no longer
 * holds everything Redis needs: its oldest records were deleted (`deleteRecords` on this
 * pipeline's own topic, what retention does to old segments), so partitions no longer start
 * at offset 0. The rebuild must fall back to a backfill of the pipeline's tables into Redis
 * only, and end with Redis equal to PostgreSQL row by row.
 */
describe('a Redis rebuild when the changes topic was truncated', { timeout: 300_000 }, () => {
  const table = unique('rbf');
  let f: RedisOnlyPipeline;
  let stream: ReturnType<typeof startStream> | undefined;

  before(async () => {
    f = await openRedisOnlyPipeline(table, 'id int PRIMARY KEY, name text, n int', { STREAMCTL_DELIVERY_LAG_INTERVAL_MS: '500', STREAMCTL_KAFKA_PARTITIONS: '2' });
  });

  after(() => f.close(stream));

  it('falls back to a backfill into Redis only and ends with Redis equal to PostgreSQL', async (t) => {
    const { db, admin, redis, pipeline, readyUrl, prefix } = f;
    const deleteKeys = (): Promise<number> => deleteKeysUnder(redis, prefix);
    const rowsInRedis = () => redis.scard(`${prefix}keys:public.${table}`);
    const ready = async () => {
      const res = await fetch(readyUrl);
      return { status: res.status, body: (await res.json()) as { sinks?: Array<{ state: string; problem: string }> } };
    };
    stream = startStream(pipeline.env, 'all');
    await waitFor('/ready', async () => (await ready()).status === 200, 90_000);
    await db.query(`INSERT INTO ${table} SELECT g, 'v' || g, 0 FROM generate_series(1, 2000) g`);
    await db.query(`UPDATE ${table} SET n = 1 WHERE id % 3 = 0`);
    await db.query(`DELETE FROM ${table} WHERE id % 7 = 0`);
    await waitFor('Redis to hold every row', async () => (await rowsInRedis()) === 2000 - 285 && (await readRow(redis, prefix, `public.${table}`, { id: 1998 }))?.['n'] === 1, 180_000);
    await waitFor('/ready with everything delivered', async () => (await ready()).status === 200, 60_000);

    // What retention does to old segments, on this pipeline's own topic: every record so far gone.
    const topic = derivedNames(loadConfig({ env: pipeline.env })).changesTopic;
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.deleteTopicRecords({ topic, partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })) });
    const after = await admin.fetchTopicOffsets(topic);
    assert.ok(after.every((p) => p.low === p.high && p.low !== '0'), JSON.stringify(after));

    // Seen on /ready while it works (polled in the background: the check must not miss it).
    const seen: string[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const r = await ready().catch(() => null);
        for (const s of r?.body.sinks ?? []) if (!seen.includes(s.problem.replace(/\d+ of \d+/, 'N of M'))) seen.push(s.problem.replace(/\d+ of \d+/, 'N of M'));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    t.after(async () => {
      polling = false; // also when an assertion below failed: a poller left running keeps the test process alive
      await poller;
    });
    const logAt = stream.log.text.length;
    assert.ok((await deleteKeys()) > 1000);
    await db.query(`INSERT INTO ${table} SELECT g, 'w' || g, 5 FROM generate_series(2001, 2010) g`);
    await db.query(`UPDATE ${table} SET name = 'changed after the loss' WHERE id <= 5`);

    const { rows } = await db.query<{ id: number; name: string; n: number }>(`SELECT id, name, n FROM ${table} ORDER BY id`);
    await waitFor(`${rows.length} rows in Redis`, async () => (await rowsInRedis()) === rows.length, 180_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; Redis holds ${await rowsInRedis()}; log: ${stream!.log.text.slice(logAt).slice(-2000)}`);
    });
    await waitFor('/ready once rebuilt', async () => (await ready()).status === 200, 120_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; /ready ${JSON.stringify((await ready()).body)}; log: ${stream!.log.text.slice(logAt).slice(-3000)}`);
    });
    polling = false;
    await poller;
    for (const row of rows) {
      const { _streamctl, ...inRedis } = (await readRow(redis, prefix, `public.${table}`, { id: row.id })) ?? {};
      assert.deepEqual(inRedis, row, `row ${row.id}`);
    }
    assert.equal(await readRow(redis, prefix, `public.${table}`, { id: 7 }), null, 'a row deleted before the loss stays deleted');
    const log = stream.log.text.slice(logAt);
    assert.match(log, /redis lost its state/);
    assert.match(log, /rebuilding redis by a backfill of the pipeline's tables into it only: the changes topic cannot rebuild it \(retention/);
    assert.match(log, /redis backfilled from PostgreSQL; delivering it/);
    assert.doesNotMatch(log, /not delivering|cannot rebuild it: retention.*fix/);
    assert.ok(seen.some((s) => /^rebuilding redis: N of M (rows backfilled from PostgreSQL|records of the changes topic replayed)/.test(s)), `/ready said: ${JSON.stringify(seen)}`);
    t.diagnostic(`/ready said: ${seen.join(' | ')}`);
    const status = await runCli(['--json', 'status'], pipeline.env);
    assert.equal(status.code, 0, status.stdout);
  });
});
