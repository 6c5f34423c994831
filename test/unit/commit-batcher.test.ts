import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommitBatcher, type PartitionOffset } from '../../src/core/clients/commit-batcher.js';

/** A batcher whose turns end when the test says, and whose calls the test answers. */
function harness() {
  const calls: Array<{ offsets: PartitionOffset[]; done: (err: Error | null) => void }> = [];
  let flush: (() => void) | null = null;
  const batcher = new CommitBatcher(
    (offsets, done) => void calls.push({ offsets, done }),
    (f) => (flush = f),
  );
  const endTurn = () => {
    const f = flush;
    flush = null;
    f?.();
  };
  return { batcher, calls, endTurn };
}

const settled = async (p: Promise<void>): Promise<string> => {
  const marker = Symbol('pending');
  const r = await Promise.race([p.then(() => 'resolved', (e: Error) => `rejected: ${e.message}`), new Promise<symbol>((res) => setImmediate(() => res(marker)))]);
  return r === marker ? 'pending' : (r as string);
};

describe('CommitBatcher: the commits of one loop turn in one call', () => {
  it('sends the partitions asked for in one turn as one call, and each caller waits for its answer', async () => {
    const { batcher, calls, endTurn } = harness();
    const a = batcher.commit(0, 10);
    const b = batcher.commit(1, 20);
    const c = batcher.commit(2, 30);
    assert.equal(calls.length, 0, 'nothing sent before the turn ends');
    endTurn();
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.offsets, [
      { partition: 0, offset: 10 },
      { partition: 1, offset: 20 },
      { partition: 2, offset: 30 },
    ]);
    assert.equal(await settled(a), 'pending', 'resolved before Kafka answered');
    calls[0]!.done(null);
    assert.deepEqual([await settled(a), await settled(b), await settled(c)], ['resolved', 'resolved', 'resolved']);
    assert.deepEqual(batcher.sent, { calls: 1, offsets: 3 });
  });

  it('a partition asked for twice in one turn goes once, with the offset asked for last', async () => {
    const { batcher, calls, endTurn } = harness();
    const first = batcher.commit(4, 100);
    const second = batcher.commit(4, 90);
    endTurn();
    assert.deepEqual(calls[0]!.offsets, [{ partition: 4, offset: 90 }]);
    calls[0]!.done(null);
    assert.deepEqual([await settled(first), await settled(second)], ['resolved', 'resolved']);
  });

  it('a failed call fails every caller in it, and the next turn is a new call', async () => {
    const { batcher, calls, endTurn } = harness();
    const a = batcher.commit(0, 1);
    const b = batcher.commit(1, 2);
    endTurn();
    const later = batcher.commit(0, 3);
    calls[0]!.done(new Error('rebalance in progress'));
    assert.deepEqual([await settled(a), await settled(b)], ['rejected: rebalance in progress', 'rejected: rebalance in progress']);
    assert.equal(await settled(later), 'pending', 'a commit of the next turn is not failed by the last one');
    endTurn();
    assert.equal(calls.length, 2);
    assert.deepEqual(calls[1]!.offsets, [{ partition: 0, offset: 3 }]);
    calls[1]!.done(null);
    assert.equal(await settled(later), 'resolved');
  });

  it('a call that throws (the consumer disconnected meanwhile) fails its callers instead of losing them', async () => {
    const batcher = new CommitBatcher(
      () => {
        throw new Error('KafkaConsumer is disconnected');
      },
      (f) => f(),
    );
    assert.equal(await settled(batcher.commit(0, 1)), 'rejected: KafkaConsumer is disconnected');
  });

  it('by default the turn ends at setImmediate: commits made together go together', async () => {
    const sent: PartitionOffset[][] = [];
    const batcher = new CommitBatcher((offsets, done) => {
      sent.push(offsets);
      done(null);
    });
    await Promise.all([batcher.commit(0, 1), batcher.commit(1, 1), batcher.commit(2, 1)]);
    await batcher.commit(0, 2);
    assert.deepEqual(sent.map((o) => o.length), [3, 1]);
  });
});
