import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CheckpointedProducer, CheckpointUnreadableError, checkpointText, readCheckpoint, type CheckpointStore, type OffsetAdmin } from '../../src/core/kafka/checkpointed-producer.js';
import type { TransactionalClient } from '../../src/core/kafka/transactional-client.js';
import { commitAll } from '../helpers/commit-all.js';

/**
 * The producer's protocol against a recording stand-in for the transactional client (a
 * plain object; librdkafka and the real broker are in test/integration/kafka-native-producer,
 * the capture and backfill integration tests and the crash proofs).
 */
type Call = { op: string; topic?: string; metadata?: string; group?: string; offset?: number };

function recordingClient(faults: { failFlush?: boolean; failProduce?: number; fenceOnCommit?: boolean; fenceOnAbort?: boolean } = {}): { client: TransactionalClient; calls: Call[] } {
  const calls: Call[] = [];
  let produced = 0;
  const client: TransactionalClient = {
    connect: async () => void calls.push({ op: 'connect' }),
    begin: async () => void calls.push({ op: 'begin' }),
    produce: async (topic) => {
      produced++;
      calls.push({ op: 'produce', topic });
      if (produced === faults.failProduce) throw new Error('broker went away');
    },
    flush: async () => {
      calls.push({ op: 'flush' });
      if (faults.failFlush) throw Object.assign(new Error('Broker: Message size too large'), { code: 10 });
    },
    sendOffsets: async (group, topic, offset, metadata) => void calls.push({ op: 'sendOffsets', group, topic, offset, metadata }),
    commit: async () => {
      calls.push({ op: 'commit' });
      if (faults.fenceOnCommit) throw Object.assign(new Error('Local: This instance has been fenced by a newer instance'), { code: -144, isFatal: true });
    },
    abort: async () => {
      calls.push({ op: 'abort' });
      if (faults.fenceOnAbort) throw Object.assign(new Error('Local: This instance has been fenced by a newer instance'), { code: -144, isFatal: true });
    },
    disconnect: async () => void calls.push({ op: 'disconnect' }),
  };
  return { client, calls };
}

const store: CheckpointStore<{ n: number }> = {
  checkpointsTopic: 'cp',
  group: 'g',
  key: () => 'capture:p',
  encode: (c) => JSON.stringify(c),
  decode: (t) => (t ? (JSON.parse(t) as { n: number }) : null),
  offset: (c) => c.n,
};

const producerOn = (client: TransactionalClient) => new CheckpointedProducer(client, { changesTopic: 'changes', store });
const record = (bytes: number) => ({ key: Buffer.from('k'), value: Buffer.alloc(bytes) });
const ops = (calls: Call[]) => calls.map((c) => `${c.op}${c.topic ? `:${c.topic}` : ''}`);

describe('checkpointed producer', () => {
  it('sends the records, then the checkpoint record, waits for every delivery, then the same checkpoint as offset metadata, then commits', async () => {
    const { client, calls } = recordingClient();
    const producer = producerOn(client);
    await producer.connect();
    await commitAll(producer, [record(10), record(10), record(10)], { n: 3 });
    assert.deepEqual(ops(calls), ['connect', 'begin', 'produce:changes', 'produce:changes', 'produce:changes', 'produce:cp', 'flush', 'sendOffsets:cp', 'commit']);
    const offsets = calls.find((c) => c.op === 'sendOffsets')!;
    assert.equal(offsets.metadata, '{"n":3}');
    assert.equal(offsets.offset, 3);
    assert.equal(offsets.group, 'g');
    assert.equal(producer.state, 'ready');
  });

  it('aborts, never commits, a transaction whose delivery reports held a failure', async () => {
    const { client, calls } = recordingClient({ failFlush: true });
    const producer = producerOn(client);
    await producer.connect();
    await assert.rejects(commitAll(producer, [record(10), record(10)], { n: 2 }), /too large/);
    assert.ok(!calls.some((c) => c.op === 'commit'), 'committed a transaction that lost records');
    assert.ok(!calls.some((c) => c.op === 'sendOffsets'), 'committed a checkpoint over lost records');
    assert.equal(calls.at(-1)!.op, 'abort');
    assert.equal(producer.state, 'ready');
  });

  it('aborts a transaction one of whose records could not be queued', async () => {
    const { client, calls } = recordingClient({ failProduce: 2 });
    const producer = producerOn(client);
    await producer.connect();
    const tx = await producer.begin();
    await tx.add(record(1));
    await assert.rejects(async () => tx.add(record(1)), /broker went away/);
    await assert.rejects(tx.commit({ n: 2 }), /cannot checkpoint in state failed/);
    assert.ok(!calls.some((c) => c.op === 'commit' || c.topic === 'cp'));
    assert.equal(calls.at(-1)!.op, 'abort');
    assert.equal(producer.state, 'ready');
  });

  it('refuses a record after the commit began and a second open transaction', async () => {
    const { client } = recordingClient();
    const producer = producerOn(client);
    await producer.connect();
    const tx = await producer.begin();
    await assert.rejects(producer.begin(), /cannot begin in state open/);
    await tx.commit({ n: 0 });
    await assert.rejects(async () => tx.add(record(1)), /cannot send in state ready/);
  });

  it('stays fenced (librdkafka -144): no abort, no new transaction', async () => {
    const { client, calls } = recordingClient({ fenceOnCommit: true });
    const producer = producerOn(client);
    await producer.connect();
    await assert.rejects(commitAll(producer, [record(10)], { n: 1 }), /fenced/);
    assert.equal(producer.state, 'fenced');
    assert.ok(!calls.some((c) => c.op === 'abort'));
    await assert.rejects(producer.begin(), /fenced/);
  });

  it('a fencing of a transaction open past its timeout is Kafka aborting it (TransactionTimedOutError), not another process', async () => {
    const { isFenced, TransactionTimedOutError } = await import('../../src/core/kafka/retry.js');
    const past = recordingClient({ fenceOnCommit: true });
    // Timeout 0: any transaction is past it by the time it commits.
    const timedOut = new CheckpointedProducer(past.client, { changesTopic: 'changes', store, transactionTimeoutMs: 0 });
    await timedOut.connect();
    const err = await commitAll(timedOut, [record(10)], { n: 1 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof TransactionTimedOutError, String(err));
    assert.equal(isFenced(err), false, 'the capturer and backfill must not take it for a takeover');
    assert.equal(timedOut.state, 'fenced', 'the producer is finished all the same: a new one is made');
    // Within its timeout, the same answer is a takeover.
    const young = recordingClient({ fenceOnCommit: true });
    const fenced = new CheckpointedProducer(young.client, { changesTopic: 'changes', store, transactionTimeoutMs: 60_000 });
    await fenced.connect();
    const err2 = await commitAll(fenced, [record(10)], { n: 1 }).then(() => null, (e: unknown) => e);
    assert.equal(isFenced(err2), true);
    assert.ok(!(err2 instanceof TransactionTimedOutError));
  });

  it('is fenced when the abort says so, though the failure that led to it was only the records purged (what librdkafka does to a zombie)', async () => {
    const { client } = recordingClient({ failFlush: true, fenceOnAbort: true });
    const producer = producerOn(client);
    await producer.connect();
    await assert.rejects(commitAll(producer, [record(10)], { n: 1 }), /fenced by a newer instance/);
    assert.equal(producer.state, 'fenced');
    await assert.rejects(producer.begin(), /fenced/);
  });
});

describe('checkpoint metadata as read back', () => {
  const json = '{"pipeline":"p","lsn":"0/16B3748","events_total":3}';

  it('drops the one trailing NUL librdkafka writes, and reads a kafkajs-written checkpoint (none) as it is', () => {
    assert.equal(checkpointText(`${json}\0`), json);
    assert.equal(checkpointText(json), json);
    assert.equal(checkpointText(`${json}\0\0`), `${json}\0`, 'only one NUL is the terminator');
    assert.equal(checkpointText(''), '');
    assert.equal(checkpointText(null), null);
    assert.equal(checkpointText(undefined), undefined);
  });

  it('readCheckpoint decodes both forms to the same checkpoint', async () => {
    const adminWith = (metadata: string): OffsetAdmin => ({
      listTopics: async () => ['cp'],
      fetchOffsets: async () => [{ topic: 'cp', partitions: [{ partition: 0, offset: '3', metadata }] }],
    });
    const strict: CheckpointStore<unknown> = { ...store, decode: (t) => (t ? JSON.parse(t) : null) } as CheckpointStore<unknown>;
    assert.deepEqual(await readCheckpoint(adminWith(`${json}\0`), strict), JSON.parse(json));
    assert.deepEqual(await readCheckpoint(adminWith(json), strict), JSON.parse(json));
  });

  it('an offset read that times out after the broker listed the topics is a checkpoint held back, with the fix; other failures stay as they are', async () => {
    const timedOut = Object.assign(new Error('kafka: request fetchOffsets timed out, the broker did not answer (Local: Timed out)'), { code: -185 });
    const held: OffsetAdmin = { listTopics: async () => ['cp'], fetchOffsets: async () => Promise.reject(timedOut) };
    await assert.rejects(readCheckpoint(held, store), (err: Error) => {
      assert.ok(err instanceof CheckpointUnreadableError);
      assert.equal((err as CheckpointUnreadableError).group, store.group);
      assert.match(err.message, /holds back the group's committed offsets.*find-hanging.*abort --topic/);
      // Not read as Kafka being unreachable (outages.ts looks for these words in the message).
      assert.doesNotMatch(err.message, /timed out|ECONNREFUSED|transport/i);
      assert.equal(err.cause, timedOut);
      return true;
    });
    const refused = new Error('Local: Broker transport failure');
    await assert.rejects(readCheckpoint({ listTopics: async () => ['cp'], fetchOffsets: async () => Promise.reject(refused) }, store), (err) => err === refused);
    await assert.rejects(readCheckpoint({ listTopics: async () => Promise.reject(timedOut), fetchOffsets: async () => [] }, store), (err) => err === timedOut, 'no answer to the topic list: Kafka unreachable, as before');
  });
});
