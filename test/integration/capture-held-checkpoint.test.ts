import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { type Admin, kafkaClient } from '../../src/core/clients/rdkafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { loadConfig } from '../../src/core/config/index.js';
import { derivedNames } from '../../src/core/config/names.js';
import { checkpointGroupOf } from '../../src/core/capture/kafka-writer.js';
import { NativeTransactionalClient } from '../../src/core/kafka/transactional-client.js';
import { silentLogger } from '../../src/core/logger.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, startStream, waitFor } from '../helpers/pipeline.js';
import { unique } from '../helpers/stack.js';

/**
 * Kafka answers but holds capture's checkpoint back: a transaction that wrote offsets for the
 * checkpoint group is open (here another producer's, left open on purpose; after a broker
 * restart, the coordinator still loading or the broker's own hanging transaction). That is no
 * outage: the broker answers. server-restarts once saw it told as three short "kafka
 * unreachable" outages in a row, each ended by the monitor's next answer from Kafka.
 */
describe('capture while Kafka holds its checkpoint back', { timeout: 180_000 }, () => {
  const table = unique('hc');
  let db: pg.Client;
  let admin: Admin;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  let stream: ReturnType<typeof startStream> | undefined;
  let holder: NativeTransactionalClient | undefined;

  const stop = async () => {
    if (stream && stream.child.exitCode === null && stream.child.signalCode === null) {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
  };

  before(async () => {
    pipeline = isolatedPipeline([`public.${table}`], 'http://127.0.0.1:1/unused');
    const config = loadConfig({ env: pipeline.env });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
    admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
    // A first run makes the topics and commits a checkpoint.
    stream = startStream(pipeline.env, 'capture');
    await waitFor('capture to start', async () => stream!.log.text.includes('capture starting'), 60_000);
    await db.query(`INSERT INTO ${table} VALUES (1)`);
    const checkpointed = async () => (await admin.fetchOffsets({ groupId: checkpointGroupOf(config), topics: [derivedNames(config).checkpointsTopic] }))[0]?.partitions.some((p) => p.offset !== '-1');
    await waitFor('a first checkpoint', checkpointed, 60_000);
    await stop();
  });

  after(async () => {
    await stop();
    await holder?.abort().catch(() => {});
    await holder?.disconnect().catch(() => {});
    await dropPipeline(db, admin, pipeline.tag);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.disconnect();
  });

  it('retries at debug, opens no Kafka outage, and starts once the transaction ends', async () => {
    const config = loadConfig({ env: pipeline.env });
    const names = derivedNames(config);
    holder = new NativeTransactionalClient(config.kafka, silentLogger, { transactionalId: `${pipeline.tag}-holder`, transactionTimeoutMs: 120_000 });
    await holder.connect();
    await holder.begin();
    await holder.sendOffsets(checkpointGroupOf(config), names.checkpointsTopic, 0, 'held');

    stream = startStream({ ...pipeline.env, STREAMCTL_LOG_LEVEL: 'debug' }, 'capture');
    await waitFor('capture to find its checkpoint held back', async () => (stream!.log.text.match(/cannot be read: the broker answers/g) ?? []).length >= 2, 90_000);
    const held = stream.log.text;
    assert.doesNotMatch(held, /unreachable since/, 'Kafka answers: no outage');
    assert.doesNotMatch(held, /^\S+ (WARN|ERROR) .*(capture interrupted|held back)/m, 'not yet worth a warning (it is past HELD_BACK_MS)');
    assert.doesNotMatch(held, /capture starting/, 'capture cannot have started with its checkpoint unread');
    assert.match(held, /DEBUG .*capture: the checkpoint is held back/);

    await holder.abort();
    await waitFor('capture to start once the checkpoint is readable', async () => stream!.log.text.includes('capture starting'), 90_000);
    const warnings = stream.log.text.split('\n').filter((l) => /^\S+ (WARN|ERROR) /.test(l));
    assert.deepEqual(warnings, [], 'no warning or error');
  });
});
