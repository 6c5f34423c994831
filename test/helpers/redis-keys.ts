import type pg from 'pg';
import { kafkaClient, type Admin } from '../../src/core/clients/rdkafka.js';
import type { Redis } from 'ioredis';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { makeRedis } from '../../src/core/clients/redis.js';
import { loadConfig } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { exited } from './capturer.js';
import { dropPipeline, isolatedPipeline, type startStream } from './pipeline.js';
import { freePort } from './ports.js';

/**
 * "Redis flushed" for one pipeline only (the shared Redis is never flushed): every key under
 * its prefix, found by SCAN, deleted in one MULTI so the deliverer never sees half of it (a
 * check between two DELs could find the marker gone but the offsets still there, and adopt).
 */
export async function deleteKeysUnder(redis: Redis, prefix: string): Promise<number> {
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const k of found) keys.add(k);
  } while (cursor !== '0');
  if (keys.size === 0) return 0;
  const all = [...keys];
  const multi = redis.multi();
  for (let i = 0; i < all.length; i += 1000) multi.del(...all.slice(i, i + 1000));
  const results = (await multi.exec()) ?? [];
  return results.reduce((n, [err, count]) => (err ? n : n + Number(count)), 0);
}

/** An isolated pipeline delivering to Redis only, for the lost-state tests: its table, clients and /ready. */
export interface RedisOnlyPipeline {
  pipeline: ReturnType<typeof isolatedPipeline>;
  db: pg.Client;
  admin: Admin;
  redis: Redis;
  prefix: string;
  readyUrl: string;
  /** Stops `stream` (SIGTERM) and removes the keys, the pipeline's slot and topics, and the table. */
  close(stream: ReturnType<typeof startStream> | undefined): Promise<void>;
}

export async function openRedisOnlyPipeline(table: string, columns: string, extraEnv: Record<string, string>): Promise<RedisOnlyPipeline> {
  const port = await freePort();
  const pipeline = isolatedPipeline([`public.${table}`], 'http://127.0.0.1:9/unused', {
    STREAMCTL_METRICS_PORT: String(port),
    STREAMCTL_SINKS_BIGQUERY_ENABLED: 'false',
    STREAMCTL_SINKS_HTTP_ENABLED: 'false',
    ...extraEnv,
  });
  const config = loadConfig({ env: pipeline.env });
  const prefix = config.sinks.redis.keyPrefix;
  const db = makePgClient(config.postgres);
  await db.connect();
  await db.query(`CREATE TABLE ${table} (${columns})`);
  const admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
  await admin.connect();
  const redis = makeRedis(config.sinks.redis, silentLogger);
  await redis.connect();
  return {
    pipeline,
    db,
    admin,
    redis,
    prefix,
    readyUrl: `http://127.0.0.1:${port}/ready`,
    async close(stream) {
      if (stream && stream.child.exitCode === null) {
        stream.child.kill('SIGTERM');
        await exited(stream.child);
      }
      await deleteKeysUnder(redis, prefix).catch(() => {});
      await redis.quit();
      await dropPipeline(db, admin, pipeline.tag);
      await db.query(`DROP TABLE IF EXISTS ${table}`);
      await db.end();
      await admin.disconnect();
    },
  };
}
