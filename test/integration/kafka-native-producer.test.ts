import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
// kafkajs only as the reference for what streamctl did before librdkafka: its partitioner, its checkpoints.
import kafkajs from 'kafkajs';
import type { KafkaConsumer as NativeConsumer, Message } from '@confluentinc/kafka-javascript';
import { kafkaClient, type Admin, type Kafka } from '../../src/core/clients/rdkafka.js';
import { silentLogger } from '../../src/core/logger.js';
import { CheckpointedProducer, nativeCheckpointedProducer, readCheckpoint, type CheckpointStore } from '../../src/core/kafka/checkpointed-producer.js';
import { NativeTransactionalClient } from '../../src/core/kafka/transactional-client.js';
import { murmur2 } from '../../src/core/kafka/partitioner.js';
import { isFenced } from '../../src/core/kafka/retry.js';
import { checkpointAdmin } from '../../src/core/clients/restart-safe-admin.js';
import { KafkaConsumer, librdkafkaSettings, nativeCall } from '../../src/core/clients/librdkafka.js';
import { stackConfig, unique } from '../helpers/stack.js';
import { commitAll } from '../helpers/commit-all.js';

/**
 * The checkpointed producer on librdkafka's native API against the stack's Kafka: where
 * keys land, the checkpoint in the offset metadata (written both ways), a full local queue,
 * a failed delivery. Records are read back with a native read_committed consumer.
 */
const config = stackConfig();
const tag = unique('native');
/** Reads of each checkpoint in the metadata test (each a round trip or two: a few seconds in all). */
const READS = 300;

interface Read {
  partition: number;
  key: string;
  value: string;
}

/** Every committed record of `topic` (all partitions from offset 0), once `count` have arrived. */
async function readCommitted(topic: string, partitions: number, count: number): Promise<Read[]> {
  const consumer: NativeConsumer = new KafkaConsumer({ ...librdkafkaSettings(config.kafka), 'group.id': unique('reader'), 'isolation.level': 'read_committed', 'enable.auto.commit': false } as never, {});
  await nativeCall((done) => consumer.connect({ timeout: 10_000 }, (err) => done(err)));
  consumer.assign(Array.from({ length: partitions }, (_, partition) => ({ topic, partition, offset: 0 })));
  const seen: Read[] = [];
  const deadline = Date.now() + 60_000;
  try {
    while (seen.length < count) {
      if (Date.now() > deadline) throw new Error(`read ${seen.length} of ${count} records of ${topic}`);
      const batch = await nativeCall<Message[]>((done) => consumer.consume(1000, done));
      for (const m of batch) seen.push({ partition: m.partition, key: m.key?.toString() ?? '', value: m.value?.toString() ?? '' });
    }
  } finally {
    await nativeCall((done) => consumer.disconnect((err) => done(err))).catch(() => {});
  }
  return seen;
}

const textStore = (topic: string, group: string): CheckpointStore<{ n: number; text: string }> => ({
  checkpointsTopic: topic,
  group,
  key: () => 'test',
  encode: (c) => JSON.stringify(c),
  // Strict, as capture's and backfill's decoders are: a stray byte is an error, never a guess.
  decode: (t) => (t ? (JSON.parse(t) as { n: number; text: string }) : null),
  offset: (c) => c.n,
});

describe('the native checkpointed producer (librdkafka)', () => {
  let kafka: Kafka;
  let admin: Admin;
  const topics = { changes3: `${tag}.c3`, changes12: `${tag}.c12`, checkpoints: `${tag}.cp`, small: `${tag}.small`, one: `${tag}.one`, queue: `${tag}.queue`, fenced: `${tag}.fenced` };

  before(async () => {
    kafka = kafkaClient(config.kafka, silentLogger, { retries: 5 });
    admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      timeout: 30_000,
      topics: [
        { topic: topics.changes3, numPartitions: 3 },
        { topic: topics.changes12, numPartitions: 12 },
        { topic: topics.checkpoints, numPartitions: 1 },
        { topic: topics.one, numPartitions: 1 },
        { topic: topics.queue, numPartitions: 1 },
        { topic: topics.fenced, numPartitions: 1 },
        { topic: topics.small, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '10000' }] },
      ],
    });
  });
  after(async () => {
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
    await admin.disconnect();
  });

  const producer = (changesTopic: string, group: string, transactionalId = unique('tx')): CheckpointedProducer<{ n: number; text: string }> =>
    nativeCheckpointedProducer(config.kafka, silentLogger, { transactionalId, changesTopic, store: textStore(topics.checkpoints, group), transactionTimeoutMs: 60_000 });

  // Keys as capture writes them, and ones around the hash's tail lengths.
  const keys = ['public.orders:{"id":"1"}', 'public.orders:{"id":"2"}', 'public.orders:{"id":"3"}', 'public.t:{"k":"ünïcødé ✓"}', 'public.accounts:{"tenant":"acme","id":"42"}', 'a', '21', 'foobar'];
  // Where kafkajs' DefaultPartitioner (= Java's) put them, pinned so the proof outlives kafkajs.
  const pinned: Record<number, number[]> = { 3: [2, 2, 1, 1, 0, 1, 0, 0], 12: [11, 11, 4, 10, 9, 4, 0, 6] };

  for (const [partitions, topic] of [
    [3, topics.changes3],
    [12, topics.changes12],
  ] as const) {
    it(`puts every key in the partition kafkajs put it in (${partitions} partitions)`, async () => {
      const many = [...keys];
      for (let i = 0; i < 500; i++) many.push(`public.orders:{"id":"${i * 7919}"}`);
      const writer = producer(topic, unique('g'));
      await writer.connect();
      await commitAll(writer, many.map((k) => ({ key: Buffer.from(k), value: Buffer.from(`v-${k}`) })),
        { n: many.length, text: 'x' },
      );
      await writer.disconnect();
      const landed = new Map((await readCommitted(topic, partitions, many.length)).map((r) => [r.key, r.partition]));
      const old = kafkajs.Partitioners.DefaultPartitioner();
      const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0, offlineReplicas: [] }));
      for (const key of many) {
        assert.equal(landed.get(key), old({ topic, partitionMetadata, message: { key, value: 'v' } }), `key ${key} (kafkajs)`);
        // Java's rule on our murmur2 (checked against Kafka's own test vectors in the unit test): survives kafkajs' removal.
        assert.equal(landed.get(key), (murmur2(Buffer.from(key)) & 0x7fffffff) % partitions, `key ${key} (murmur2)`);
      }
      assert.deepEqual(
        keys.map((k) => landed.get(k)),
        pinned[partitions],
      );
    });
  }

  it('commits the checkpoint as offset metadata; a restart reads it back, and one written by kafkajs (no NUL) too', async () => {
    // 3 KB of text with quotes and non-ASCII: what a long --where in a backfill checkpoint looks like.
    const text = `id > 'ü' AND note = "x" ${'-'.repeat(3000)}`;
    const nativeGroup = unique('g');
    const writer = producer(topics.one, nativeGroup);
    await writer.connect();
    await commitAll(writer, [{ key: Buffer.from('k'), value: Buffer.from('v') }], { n: 7, text });
    await writer.disconnect();
    // Through the admin capture and backfill read with, many times: the library's own admin
    // read of metadata without a NUL (kafkajs') had stray heap bytes after it about 1 read in 100.
    const reader = checkpointAdmin(config.kafka, silentLogger);
    after(() => reader.disconnect());
    const readMany = async (group: string) => {
      const seen = new Set<string>();
      for (let i = 0; i < READS; i++) seen.add(JSON.stringify(await readCheckpoint(reader, textStore(topics.checkpoints, group))));
      return [...seen].map((s) => JSON.parse(s) as unknown);
    };
    assert.deepEqual(await readMany(nativeGroup), [{ n: 7, text }]);

    // The old way, as streamctl wrote checkpoints before the move.
    const oldGroup = unique('g');
    const old = new kafkajs.Kafka({ brokers: config.kafka.brokers, logLevel: kafkajs.logLevel.NOTHING }).producer({ transactionalId: unique('tx'), idempotent: true, maxInFlightRequests: 1 });
    await old.connect();
    const tx = await old.transaction();
    await tx.send({ topic: topics.one, messages: [{ key: 'k', value: 'old' }] });
    await tx.sendOffsets({ consumerGroupId: oldGroup, topics: [{ topic: topics.checkpoints, partitions: [{ partition: 0, offset: '5', metadata: JSON.stringify({ n: 5, text }) } as never] }] });
    await tx.commit();
    await old.disconnect();
    assert.deepEqual(await readMany(oldGroup), [{ n: 5, text }]);
  });

  it('a producer whose transactional id was taken by a newer one is fenced (librdkafka -144): its transaction is not committed, and it stays fenced', async () => {
    const group = unique('g');
    const transactionalId = unique('tx');
    const make = () => producer(topics.fenced, group, transactionalId);
    const zombie = make();
    await zombie.connect();
    after(() => zombie.disconnect());
    await commitAll(zombie, [{ key: Buffer.from('k'), value: Buffer.from('before') }], { n: 1, text: 'zombie' });
    const successor = make();
    await successor.connect(); // InitProducerId: bumps the epoch
    after(() => successor.disconnect());
    const err = await commitAll(zombie, [{ key: Buffer.from('k'), value: Buffer.from('zombie') }], { n: 2, text: 'zombie' }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err, 'the zombie committed');
    assert.ok(isFenced(err), `not seen as fenced: ${JSON.stringify(err)}`);
    assert.equal(zombie.state, 'fenced');
    await assert.rejects(zombie.begin(), /fenced/);
    await commitAll(successor, [{ key: Buffer.from('k'), value: Buffer.from('after') }], { n: 3, text: 'successor' });
    assert.deepEqual(await readCheckpoint(admin, textStore(topics.checkpoints, group)), { n: 3, text: 'successor' });
    assert.deepEqual(
      (await readCommitted(topics.fenced, 1, 2)).map((r) => r.value),
      ['before', 'after'],
    );
  });

  it('waits when librdkafka queue is full, never drops: 3,000 records through a queue of 10', async () => {
    const client = new NativeTransactionalClient(config.kafka, silentLogger, { transactionalId: unique('tx'), transactionTimeoutMs: 60_000, extraSettings: { 'queue.buffering.max.messages': 10 } });
    const writer = new CheckpointedProducer(client, { changesTopic: topics.queue, store: textStore(topics.checkpoints, unique('g')) });
    await writer.connect();
    const n = 3000;
    await commitAll(writer, Array.from({ length: n }, (_, i) => ({ key: Buffer.from(`q${i}`), value: Buffer.from(`queued-${i}`) })),
      { n, text: 'q' },
    );
    await writer.disconnect();
    const read = await readCommitted(topics.queue, 1, n);
    assert.equal(new Set(read.map((r) => r.value)).size, n);
  });

  it('never commits over a failed delivery: the broker refuses a record, the transaction is aborted; the restarted producer commits', async () => {
    const group = unique('g');
    const transactionalId = unique('tx');
    const make = () => producer(topics.small, group, transactionalId);
    const writer = make();
    await writer.connect();
    after(() => writer.disconnect());
    await assert.rejects(
      commitAll(writer, [{ key: Buffer.from('ok'), value: Buffer.from('first') }, { key: Buffer.from('big'), value: Buffer.alloc(50_000, 120) }], { n: 2, text: 'lost' }),
      /too large/i,
    );
    assert.equal(writer.state, 'ready');
    await writer.disconnect();
    assert.equal(await readCheckpoint(admin, textStore(topics.checkpoints, group)), null, 'a checkpoint was committed over a refused record');
    // As capture and backfill do after any failure: a new producer (librdkafka needs the
    // epoch bump of InitProducerId after a refused record; the same one would fail once more).
    const again = make();
    await again.connect();
    await commitAll(again, [{ key: Buffer.from('ok'), value: Buffer.from('second') }], { n: 1, text: 'kept' });
    await again.disconnect();
    assert.deepEqual(await readCheckpoint(admin, textStore(topics.checkpoints, group)), { n: 1, text: 'kept' });
    const read = await readCommitted(topics.small, 1, 1);
    assert.deepEqual(
      read.map((r) => r.value),
      ['second'],
    );
  });
});
