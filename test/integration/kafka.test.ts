import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { kafkaClient, type Admin } from '../../src/core/clients/rdkafka.js';
import { NativeTransactionalClient } from '../../src/core/kafka/transactional-client.js';
import { silentLogger } from '../../src/core/logger.js';
import { readTopic } from '../helpers/kafka-read.js';
import { stackConfig, unique } from '../helpers/stack.js';

describe('Kafka of the local stack', () => {
  const config = stackConfig();
  const kafka = kafkaClient(config.kafka, silentLogger, { retries: 5 });
  const topic = unique('tx-test');
  let admin: Admin;

  before(async () => {
    admin = kafka.admin();
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], timeout: 30_000 }), true);
  });
  after(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  });

  it('commits one transaction and aborts another; read_committed sees only the committed one', async () => {
    const producer = new NativeTransactionalClient(config.kafka, silentLogger, { transactionalId: unique('tx'), transactionTimeoutMs: 60_000 });
    await producer.connect();
    try {
      await producer.begin();
      await producer.produce(topic, 'k', 'aborted-1');
      await producer.produce(topic, 'k', 'aborted-2');
      await producer.flush();
      await producer.abort();
      await producer.begin();
      await producer.produce(topic, 'k', 'committed-1');
      await producer.commit();
    } finally {
      await producer.disconnect();
    }
    // The committed record sits after the aborted ones in the log, so once it has arrived
    // anything visible from the aborted transaction would have arrived too.
    const seen = (await readTopic(kafka, topic, { enough: (rs) => rs.some((r) => r.value === 'committed-1'), quietMs: 1000, timeoutMs: 30_000 })).map((r) => r.value);
    assert.deepEqual(seen, ['committed-1']);
  });
});
