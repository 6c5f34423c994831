import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Partitioners, type Admin } from 'kafkajs';
import { makeKafka } from '../../src/core/clients/kafka.js';
import { silentLogger } from '../../src/core/logger.js';
import { stackConfig, unique } from '../helpers/stack.js';

describe('Kafka of the local stack', () => {
  const kafka = makeKafka(stackConfig().kafka, silentLogger, { retries: 5 });
  const topic = unique('tx-test');
  let admin: Admin;

  before(async () => {
    admin = kafka.admin();
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true }), true);
  });
  after(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  });

  it('commits one transaction and aborts another; read_committed sees only the committed one', async () => {
    const producer = kafka.producer({
      transactionalId: unique('tx'),
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    const aborted = await producer.transaction();
    await aborted.send({ topic, messages: [{ key: 'k', value: 'aborted-1' }, { key: 'k', value: 'aborted-2' }] });
    await aborted.abort();
    const committed = await producer.transaction();
    await committed.send({ topic, messages: [{ key: 'k', value: 'committed-1' }] });
    await committed.commit();
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: unique('g'), readUncommitted: false });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen: string[] = [];
    // The committed record sits after the aborted ones in the log, so once it has arrived
    // anything visible from the aborted transaction would have arrived too.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(seen)}`)), 30_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message.value?.toString() ?? '');
          if (seen.includes('committed-1')) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();
    assert.deepEqual(seen, ['committed-1']);
  });
});
