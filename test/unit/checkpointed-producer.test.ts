import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Kafka } from 'kafkajs';
import { CheckpointedProducer, type CheckpointStore } from '../../src/core/kafka/checkpointed-producer.js';

/**
 * The producer's protocol against a recording stand-in for kafkajs' transaction (a plain
 * object; the real broker is in the capture and backfill integration tests and crash proofs).
 */
type Call = { op: string; topic?: string; count?: number; metadata?: string; group?: string; offset?: string };

function recordingKafka(failSendNumber: number | null = null, fenceOnCommit = false): { kafka: Kafka; calls: Call[] } {
  const calls: Call[] = [];
  let sends = 0;
  const tx = {
    send: async ({ topic, messages }: { topic: string; messages: unknown[] }) => {
      sends++;
      calls.push({ op: 'send', topic, count: messages.length });
      if (sends === failSendNumber) throw new Error('broker went away');
    },
    sendOffsets: async ({ consumerGroupId, topics }: { consumerGroupId: string; topics: Array<{ topic: string; partitions: Array<{ offset: string; metadata: string }> }> }) => {
      calls.push({ op: 'sendOffsets', group: consumerGroupId, topic: topics[0]!.topic, offset: topics[0]!.partitions[0]!.offset, metadata: topics[0]!.partitions[0]!.metadata });
    },
    commit: async () => {
      calls.push({ op: 'commit' });
      if (fenceOnCommit) throw Object.assign(new Error('producer fenced'), { type: 'PRODUCER_FENCED' });
    },
    abort: async () => {
      calls.push({ op: 'abort' });
    },
  };
  const producer = {
    connect: async () => calls.push({ op: 'connect' }),
    disconnect: async () => calls.push({ op: 'disconnect' }),
    transaction: async () => tx,
  };
  return { kafka: { producer: () => producer } as unknown as Kafka, calls };
}

const store: CheckpointStore<{ n: number }> = {
  checkpointsTopic: 'cp',
  group: 'g',
  key: () => 'capture:p',
  encode: (c) => JSON.stringify(c),
  decode: (t) => (t ? (JSON.parse(t) as { n: number }) : null),
  offset: (c) => c.n,
};

const producerOn = (kafka: Kafka) =>
  new CheckpointedProducer(kafka, { transactionalId: 't', changesTopic: 'changes', store, transactionTimeoutMs: 60_000, retryMaxDelayMs: 1000 });

const record = (bytes: number) => ({ key: Buffer.from('k'), value: Buffer.alloc(bytes) });

describe('checkpointed producer', () => {
  it('sends the records, then the checkpoint record and the same checkpoint as offset metadata, then commits', async () => {
    const { kafka, calls } = recordingKafka();
    const producer = producerOn(kafka);
    await producer.connect();
    // 3 records of 400 KiB: two requests (900 KiB each at most), all before the checkpoint.
    await producer.commitAll([record(400 * 1024), record(400 * 1024), record(400 * 1024)], { n: 3 });
    assert.deepEqual(
      calls.slice(1).map((c) => `${c.op}:${c.topic ?? ''}:${c.count ?? ''}`),
      ['send:changes:2', 'send:changes:1', 'send:cp:1', 'sendOffsets:cp:', 'commit::'],
    );
    const offsets = calls.find((c) => c.op === 'sendOffsets')!;
    assert.equal(offsets.metadata, '{"n":3}');
    assert.equal(offsets.offset, '3');
    assert.equal(offsets.group, 'g');
    assert.equal(producer.state, 'ready');
  });

  it('aborts, never commits, a transaction one of whose sends failed', async () => {
    const { kafka, calls } = recordingKafka(1);
    const producer = producerOn(kafka);
    await producer.connect();
    const tx = await producer.begin();
    for (let i = 0; i < 4; i++) await tx.add(record(400 * 1024)).catch(() => {});
    await assert.rejects(tx.commit({ n: 4 }), /broker went away/);
    assert.ok(!calls.some((c) => c.op === 'commit'), 'committed a transaction that lost records');
    assert.ok(!calls.some((c) => c.topic === 'cp'), 'wrote a checkpoint over lost records');
    assert.equal(calls.at(-1)!.op, 'abort');
    assert.equal(producer.state, 'ready');
  });

  it('refuses a record after the commit began and a second open transaction', async () => {
    const { kafka } = recordingKafka();
    const producer = producerOn(kafka);
    await producer.connect();
    const tx = await producer.begin();
    await assert.rejects(producer.begin(), /cannot begin in state open/);
    await tx.commit({ n: 0 });
    await assert.rejects(tx.add(record(1)), /cannot send in state ready/);
  });

  it('stays fenced: no abort, no new transaction', async () => {
    const { kafka, calls } = recordingKafka(null, true);
    const producer = producerOn(kafka);
    await producer.connect();
    await assert.rejects(producer.commitAll([record(10)], { n: 1 }), /fenced/);
    assert.equal(producer.state, 'fenced');
    assert.ok(!calls.some((c) => c.op === 'abort'));
    await assert.rejects(producer.begin(), /fenced/);
  });
});
