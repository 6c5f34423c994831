import { type Admin, type Kafka, kafkaClient } from '../../src/core/clients/rdkafka.js';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { makeRedis } from '../../src/core/clients/redis.js';
import { loadConfig } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { HttpReceiver } from '../../src/receiver/server.js';
import { exited } from './capturer.js';
import { dropPipeline, isolatedPipeline, RECEIVER_KEY, startStream, waitFor } from './pipeline.js';

/**
 * One isolated pipeline with its clients, for an end-to-end test on the real stack: an
 * in-process HTTP receiver, PostgreSQL, a Kafka admin, Redis. `close()` stops the stream
 * and removes everything the pipeline made (tables listed in `dropTables` too).
 */
export interface EndToEnd {
  pipeline: ReturnType<typeof isolatedPipeline>;
  receiver: HttpReceiver;
  db: pg.Client;
  kafka: Kafka;
  admin: Admin;
  redis: Redis;
  stream: ReturnType<typeof startStream> | undefined;
  /** Starts `stream --role all` and waits until capture and the three sinks run. */
  startStream(): Promise<void>;
  close(dropTables: string[]): Promise<void>;
}

export async function openEndToEnd(tables: string[], extraEnv: Record<string, string> = {}, receiverOptions: { maxBodyBytes?: number } = {}): Promise<EndToEnd> {
  const receiver = new HttpReceiver({ hmacKey: RECEIVER_KEY, ...receiverOptions });
  const address = await receiver.listen(0);
  const pipeline = isolatedPipeline(tables, `http://127.0.0.1:${address.port}/events`, extraEnv);
  const config = loadConfig({ env: pipeline.env });
  const db = makePgClient(config.postgres);
  await db.connect();
  const kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
  const admin = kafka.admin();
  await admin.connect();
  const redis = makeRedis(config.sinks.redis, silentLogger);
  await redis.connect();
  const e2e: EndToEnd = {
    pipeline,
    receiver,
    db,
    kafka,
    admin,
    redis,
    stream: undefined,
    async startStream() {
      const stream = startStream(pipeline.env);
      e2e.stream = stream;
      await waitFor('the stream to start', async () => stream.log.text.includes('capture starting') && stream.log.text.split('sink delivering').length > 3, 60_000);
    },
    async close(dropTables) {
      if (e2e.stream?.child.exitCode === null) {
        e2e.stream.child.kill('SIGTERM');
        await exited(e2e.stream.child);
      }
      const keys = await redis.keys(`${pipeline.tag}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
      await makeBigQuery(config.sinks.bigquery).dataset(pipeline.tag).delete({ force: true }).catch(() => {});
      await dropPipeline(db, admin, pipeline.tag);
      for (const t of dropTables) await db.query(`DROP TABLE IF EXISTS ${t}`);
      await db.end();
      await admin.disconnect();
      await receiver.close();
    },
  };
  return e2e;
}
