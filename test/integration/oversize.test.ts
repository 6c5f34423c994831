import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import type { Admin, Kafka } from 'kafkajs';
import type { Redis } from 'ioredis';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { makeKafka } from '../../src/core/clients/kafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { makeRedis } from '../../src/core/clients/redis.js';
import { derivedNames, loadConfig } from '../../src/core/config/index.js';
import type { ChangeEvent } from '../../src/core/event/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { readRow } from '../../src/core/sinks/redis.js';
import { HttpReceiver } from '../../src/receiver/server.js';
import { exited } from '../helpers/capturer.js';
import { readTopic } from '../helpers/kafka-read.js';
import { dropPipeline, isolatedPipeline, RECEIVER_KEY, startStream, waitFor } from '../helpers/pipeline.js';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';

const MiB = 1024 * 1024;

/**
 * Row size on the real stack, with kafka.maxRecordBytes at 3 MiB (the broker keeps its
 * 1 MiB message.max.bytes: the topics' own max.message.bytes does the work): a 2 MiB row
 * flows to every sink; a 4 MiB row becomes an oversize marker in each sink's DLQ and does
 * not hold back the row after it; a keyed backfill under a raised limit brings it in.
 */
describe('oversized rows: within the limit they flow, beyond it a marker, then a keyed backfill', { timeout: 300_000 }, () => {
  const table = unique('ovs');
  const receiver = new HttpReceiver({ hmacKey: RECEIVER_KEY, maxBodyBytes: 32 * MiB });
  let db: pg.Client;
  let kafka: Kafka;
  let admin: Admin;
  let redis: Redis;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  let stream: ReturnType<typeof startStream>;
  const doc = (n: number, c: string) => c.repeat(n);

  before(async () => {
    const address = await receiver.listen(0);
    pipeline = isolatedPipeline([`public.${table}`], `http://127.0.0.1:${address.port}/events`, { STREAMCTL_KAFKA_MAX_RECORD_BYTES: String(3 * MiB) });
    const config = loadConfig({ env: pipeline.env });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, doc text)`);
    kafka = makeKafka(config.kafka, silentLogger, { retries: 10 });
    admin = kafka.admin();
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

  const row = (id: number) => readRow(redis, `${pipeline.tag}:`, `public.${table}`, { id });
  const latestDocLengths = async (): Promise<Map<number, number>> => {
    const bq = makeBigQuery(loadConfig({ env: pipeline.env }).sinks.bigquery);
    const [rows] = await bq.query({ query: `SELECT row_key, LENGTH(after) AS n FROM \`${pipeline.tag}.latest\` WHERE source_table = '${table}'` });
    return new Map((rows as Array<{ row_key: string; n: number }>).map((r) => [(JSON.parse(r.row_key) as { id: number }).id, Number(r.n)]));
  };

  it('delivers a 2 MiB row; a 4 MiB row is an oversize marker in every DLQ and the row after it still flows', async () => {
    await db.query(`INSERT INTO ${table} VALUES (1, $1)`, [doc(2 * MiB, 'a')]);
    await db.query(`INSERT INTO ${table} VALUES (2, $1)`, [doc(4 * MiB, 'b')]);
    await db.query(`INSERT INTO ${table} VALUES (3, 'small')`);
    await waitFor('rows 1 and 3 in Redis', async () => (await row(1))?.['doc'] === doc(2 * MiB, 'a') && (await row(3))?.['doc'] === 'small', 120_000);
    assert.equal(await row(2), null, 'the oversized row is not applied');
    await waitFor('rows 1 and 3 in BigQuery latest', async () => {
      const got = await latestDocLengths();
      return got.has(1) && got.has(3) && !got.has(2) && got.get(1)! > 2 * MiB;
    }, 120_000);

    const names = derivedNames(loadConfig({ env: pipeline.env }));
    const dead = await readTopic(kafka, names.dlqTopic, { enough: (rs) => rs.length >= 3, quietMs: 1500, timeoutMs: 60_000 });
    const markers = dead.map((r) => JSON.parse(r.value) as ChangeEvent).filter((e) => e.op === 'oversize');
    assert.equal(markers.length, 3, 'one marker in the DLQ of each sink (redis, bigquery, http)');
    for (const m of markers) {
      assert.deepEqual(m.key, { id: 2 });
      assert.equal(m.oversize?.op, 'insert');
      assert.equal(m.oversize?.limit_bytes, 3 * MiB);
      assert.ok((m.oversize?.columns['doc'] ?? 0) > 4 * MiB);
    }
    assert.match(stream.log.text, /row over kafka\.maxRecordBytes: wrote an oversize marker/);
  });

  it('brings the row in with a keyed backfill once the limit is raised (the topics are raised too, no broker restart)', async () => {
    const raised = { ...pipeline.env, STREAMCTL_KAFKA_MAX_RECORD_BYTES: String(8 * MiB) };
    const result = await runCli(['backfill', '--table', `public.${table}`, '--where', 'id = 2'], raised, 120_000);
    assert.equal(result.code, 0, result.stderr);
    await waitFor('row 2 in Redis', async () => (await row(2))?.['doc'] === doc(4 * MiB, 'b'), 120_000);
    await waitFor('row 2 in BigQuery latest', async () => ((await latestDocLengths()).get(2) ?? 0) > 4 * MiB, 120_000);
  });
});
