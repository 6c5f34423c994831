import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { kafkaClient, type Admin } from '../../src/core/clients/rdkafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { makeRedis } from '../../src/core/clients/redis.js';
import { derivedNames, loadConfig } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { readRow } from '../../src/core/sinks/redis/sink.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, startStream, waitFor } from '../helpers/pipeline.js';
import { unique } from '../helpers/stack.js';

/** Partitions of the changes topic each member of the group holds, by member. */
async function assignment(admin: Admin, group: string, topic: string): Promise<number[][]> {
  const { groups } = await admin.describeGroups([group]);
  return (groups[0]?.members ?? []).map((m) => m.assignment.topicPartitions.filter((tp) => tp.topic === topic).map((tp) => tp.partition));
}

describe('two deliverers in one consumer group', { timeout: 240_000 }, () => {
  const table = unique('sc');
  let db: pg.Client;
  let admin: Admin;
  let redis: Redis;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  const children: Array<ReturnType<typeof startStream>> = [];

  before(async () => {
    pipeline = isolatedPipeline([`public.${table}`], 'http://127.0.0.1:1/unused', {
      STREAMCTL_SINKS_BIGQUERY_ENABLED: 'false',
      STREAMCTL_SINKS_HTTP_ENABLED: 'false',
      STREAMCTL_DELIVERY_SESSION_TIMEOUT_MS: '6000',
    });
    const config = loadConfig({ env: pipeline.env });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
    redis = makeRedis(config.sinks.redis, silentLogger);
    await redis.connect();
  });

  after(async () => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    for (const c of children) await exited(c.child);
    const keys = await redis.keys(`${pipeline.tag}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await dropPipeline(db, admin, pipeline.tag);
    await admin.deleteGroups([derivedNames(loadConfig({ env: pipeline.env })).consumerGroup('redis')]).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.disconnect();
  });

  it('share the partitions, and killing one hands its partitions to the other without loss', async () => {
    const names = derivedNames(loadConfig({ env: pipeline.env }));
    const group = names.consumerGroup('redis');
    const capture = startStream(pipeline.env, 'capture');
    children.push(capture);
    await waitFor('capture to start', async () => capture.log.text.includes('capture starting'));
    const a = startStream(pipeline.env, 'deliver');
    const b = startStream(pipeline.env, 'deliver');
    children.push(a, b);
    await waitFor('both deliverers to start', async () => a.log.text.includes('sink delivering') && b.log.text.includes('sink delivering'));
    const shared = await waitFor('the group to split the 3 partitions between 2 members', async () => {
      const parts = await assignment(admin, group, names.changesTopic);
      return parts.length === 2 && parts.every((p) => p.length > 0) && parts.flat().length === 3 ? parts : false;
    });
    assert.deepEqual(shared.flat().sort(), [0, 1, 2]);

    const rows = (from: number, to: number) => db.query(`INSERT INTO ${table} SELECT g, 'v' || g FROM generate_series($1::int, $2::int) g`, [from, to]);
    const redisCount = () => redis.scard(`${pipeline.tag}:keys:public.${table}`);
    await rows(1, 1500);
    await waitFor('Redis to hold the first 1500 rows', async () => (await redisCount()) === 1500);

    // One deliverer dies without a word to the group; the other must take all partitions.
    a.child.kill('SIGKILL');
    await exited(a.child);
    await rows(1501, 3000);
    await db.query(`UPDATE ${table} SET v = 'updated' WHERE id % 10 = 0`);
    const alone = await waitFor('the survivor to hold every partition', async () => {
      const parts = await assignment(admin, group, names.changesTopic);
      return parts.length === 1 && parts[0]!.length === 3 ? parts : false;
    }, 60_000);
    assert.deepEqual(alone[0]!.sort(), [0, 1, 2]);
    await waitFor('Redis to hold all 3000 rows', async () => (await redisCount()) === 3000, 60_000);
    for (const id of [10, 1500, 1501, 2990, 3000, 7]) {
      const want = id % 10 === 0 ? 'updated' : `v${id}`;
      await waitFor(`row ${id} = ${want}`, async () => (await readRow(redis, `${pipeline.tag}:`, `public.${table}`, { id }))?.['v'] === want, 30_000);
    }
  });
});
