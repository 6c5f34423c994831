import type { Admin } from '../../src/core/clients/rdkafka.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import type { StatusReport } from '../../src/core/health/types.js';
import { readRow } from '../../src/core/sinks/redis/sink.js';
import { exited } from '../helpers/capturer.js';
import { startStream, waitFor } from '../helpers/pipeline.js';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';
import { deleteKeysUnder, openRedisOnlyPipeline, type RedisOnlyPipeline } from '../helpers/redis-keys.js';

/**
 * Redis comes back empty (a restart without persistence, a FLUSHDB) under a running stream.
 * Simulated for this pipeline alone by deleting every key under its keyPrefix; the shared
 * Redis is never flushed. Under `auto` the read model must be rebuilt from the changes topic
 * with no manual step, /ready false and `status` exit 4 with the rebuild's progress
 * meanwhile; under `manual` the deliverer refuses to write and says what to run.
 */
describe('Redis that lost its state is detected and rebuilt', { timeout: 300_000 }, () => {
  const table = unique('lost');
  let f: RedisOnlyPipeline;
  let db: pg.Client;
  let admin: Admin;
  let redis: Redis;
  let pipeline: RedisOnlyPipeline['pipeline'];
  let stream: ReturnType<typeof startStream> | undefined;
  let readyUrl = '';
  let prefix = '';

  before(async () => {
    f = await openRedisOnlyPipeline(table, 'id int PRIMARY KEY, name text, n int', {
      // One event per write: the rebuild of ~11,000 events takes long enough to be seen.
      STREAMCTL_DELIVERY_MAX_BATCH_EVENTS: '1',
      STREAMCTL_DELIVERY_LAG_INTERVAL_MS: '500',
      STREAMCTL_KAFKA_PARTITIONS: '3',
    });
    ({ db, admin, redis, pipeline, readyUrl, prefix } = f);
  });

  after(() => f.close(stream));

  async function stopStream(): Promise<void> {
    if (stream && stream.child.exitCode === null) {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
  }

  /** "Redis flushed", for this pipeline only. */
  const deleteKeys = (): Promise<number> => deleteKeysUnder(redis, prefix);

  const rowsInRedis = () => redis.scard(`${prefix}keys:public.${table}`);
  const ready = async () => {
    const res = await fetch(readyUrl);
    return { status: res.status, body: (await res.json()) as { ready: boolean; sinks?: Array<{ state: string; problem: string; fix: string }> } };
  };
  const status = async () => {
    const r = await runCli(['--json', 'status'], pipeline.env);
    return { code: r.code, report: JSON.parse(r.stdout) as StatusReport, stderr: r.stderr };
  };

  it('rebuilds an emptied Redis from the changes topic under auto, with status exit 4 meanwhile', async (t) => {
    stream = startStream(pipeline.env, 'all');
    await waitFor('/ready', async () => (await ready()).status === 200, 90_000);
    await db.query(`INSERT INTO ${table} SELECT g, 'v' || g, 0 FROM generate_series(1, 1000) g`);
    // Ten updates of every row: ~11,000 events for the rebuild to replay, one per write.
    for (let i = 0; i < 9; i++) await db.query(`UPDATE ${table} SET n = n + 1`);
    await db.query(`UPDATE ${table} SET n = n + 1, name = name || '!'`);
    await waitFor('1,000 rows in Redis', async () => (await rowsInRedis()) === 1000 && (await readRow(redis, prefix, `public.${table}`, { id: 1000 }))?.['n'] === 10, 180_000);
    await waitFor('/ready with everything delivered', async () => (await ready()).status === 200, 60_000);

    assert.ok((await deleteKeys()) > 1000);
    assert.equal(await rowsInRedis(), 0);
    for (let i = 1001; i <= 1011; i++) await db.query(`INSERT INTO ${table} VALUES ($1, $2, 0)`, [i, `v${i}`]);

    const rebuilding = await waitFor('/ready to say redis is rebuilding', async () => {
      const r = await ready();
      return r.status === 503 && r.body.sinks?.some((s) => s.state === 'rebuilding') ? r.body : false;
    }, 60_000).catch(async (err: Error) => {
      // What an operator would have found: the rows left in the read model.
      throw new Error(`${err.message}; Redis holds ${await rowsInRedis()} of 1011 rows`);
    });
    assert.match(rebuilding.sinks![0]!.problem, /^rebuilding redis: \d+ of \d+ records of the changes topic replayed$/);
    // status until it answers 4 (or the rows are all back, when it would have missed the rebuild).
    const s = await waitFor('status exit 4', async () => {
      const r = await status();
      return r.code === 4 || (await rowsInRedis()) === 1011 ? r : false;
    }, 120_000);
    assert.equal(s.code, 4, s.stderr);
    const problem = s.report.problems.find((p) => p.component === 'redis');
    assert.match(problem?.problem ?? '', /^rebuilding redis: \d+ of \d+ records/, JSON.stringify(s.report.problems));
    t.diagnostic(`status exit ${s.code}: ${problem!.problem}`);

    await waitFor('1,011 rows in Redis', async () => (await rowsInRedis()) === 1011, 180_000);
    await waitFor('/ready once rebuilt', async () => (await ready()).status === 200, 60_000);
    const { rows } = await db.query<{ id: number; name: string; n: number }>(`SELECT id, name, n FROM ${table} ORDER BY id`);
    assert.equal(rows.length, 1011);
    for (const row of rows) {
      const { _streamctl, ...inRedis } = (await readRow(redis, prefix, `public.${table}`, { id: row.id })) ?? {};
      assert.deepEqual(inRedis, row);
    }
    assert.match(stream.log.text, /redis lost its state/);
    assert.equal((await status()).code, 0);
  });

  it('a deliverer SIGKILLed during a rebuild goes on with it after a restart, and still reports it', async () => {
    assert.ok((await deleteKeys()) > 1000);
    await db.query(`UPDATE ${table} SET n = n + 10 WHERE id <= 20`);
    await waitFor('/ready to say redis is rebuilding', async () => {
      const r = await ready();
      return r.status === 503 && r.body.sinks?.some((x) => x.state === 'rebuilding') ? r.body : false;
    }, 60_000);
    stream!.child.kill('SIGKILL');
    await exited(stream!.child);
    stream = startStream(pipeline.env, 'all');
    await waitFor('the restarted stream to resume the rebuild', async () => /still being rebuilt|rebuilt from the changes topic/.test(stream!.log.text), 90_000);
    assert.match(stream.log.text, /redis partition \d+ is still being rebuilt/);
    await waitFor('1,011 rows in Redis', async () => (await rowsInRedis()) === 1011, 180_000);
    await waitFor('/ready once rebuilt', async () => (await ready()).status === 200, 60_000);
    const { rows } = await db.query<{ id: number; name: string; n: number }>(`SELECT id, name, n FROM ${table} ORDER BY id`);
    for (const row of rows) {
      const { _streamctl, ...inRedis } = (await readRow(redis, prefix, `public.${table}`, { id: row.id })) ?? {};
      assert.deepEqual(inRedis, row);
    }
  });

  it('under manual, refuses to write into the emptied Redis and says what to run', async (t) => {
    await stopStream();
    await deleteKeys();
    stream = startStream({ ...pipeline.env, STREAMCTL_SINKS_REDIS_REBUILD: 'manual' }, 'all');
    await db.query(`INSERT INTO ${table} VALUES (2000, 'after', 0)`);
    const refused = await waitFor('/ready to say redis refuses', async () => {
      const r = await fetch(readyUrl).then(async (res) => ({ status: res.status, body: (await res.json()) as { sinks?: Array<{ state: string; problem: string; fix: string }> } })).catch(() => null);
      return r && r.status === 503 && r.body.sinks?.some((x) => x.state === 'refused') ? r.body : false;
    }, 90_000);
    assert.match(refused.sinks![0]!.problem, /redis lost its state .* sinks\.redis\.rebuild is manual: not delivering/);
    assert.match(refused.sinks![0]!.fix, /set sinks\.redis\.rebuild to auto and restart stream/);
    const s = await status();
    assert.equal(s.code, 4, s.stderr);
    assert.ok(s.report.problems.some((p) => p.component === 'redis' && /rebuild is manual/.test(p.problem)));
    t.diagnostic(`status exit ${s.code}: ${refused.sinks![0]!.problem} / fix: ${refused.sinks![0]!.fix}`);
    assert.equal(await rowsInRedis(), 0, 'nothing may be written into the emptied read model');
    assert.equal(await readRow(redis, prefix, `public.${table}`, { id: 2000 }), null);
  });
});
