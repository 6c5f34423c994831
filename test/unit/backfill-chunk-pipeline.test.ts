import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkPipeline } from '../../src/core/backfill/chunk-pipeline.js';
import { CheckpointedProducer, type CheckpointStore } from '../../src/core/kafka/checkpointed-producer.js';
import type { TransactionalClient } from '../../src/core/kafka/transactional-client.js';

/**
 * The pipeline's rule against a recording stand-in for the transactional client (a plain
 * object; the real broker is in the backfill integration and crash tests): records read
 * while a chunk commits go into the next transaction, each transaction holds exactly its
 * chunk and the checkpoint past it, and nothing commits after a failed commit.
 */
interface Tx {
  records: string[];
  checkpoint: string | null;
  committed: boolean;
}

function recordingClient(options: { failCommit?: number } = {}) {
  const txs: Tx[] = [];
  let open: Tx | null = null;
  let releaseCommit: (() => void) | null = null;
  const commitGate = { held: false };
  const client: TransactionalClient = {
    connect: async () => {},
    begin: async () => {
      assert.equal(open, null, 'a transaction began while one was open');
      open = { records: [], checkpoint: null, committed: false };
      txs.push(open);
    },
    produce: async (topic, _key, value) => {
      assert.ok(open, 'a record outside a transaction');
      if (topic === 'changes') open.records.push(value.toString());
    },
    flush: async () => {},
    sendOffsets: async (_group, _topic, _offset, metadata) => {
      open!.checkpoint = metadata;
    },
    commit: async () => {
      if (commitGate.held) await new Promise<void>((resolve) => (releaseCommit = resolve));
      const tx = open!;
      open = null;
      if (options.failCommit === txs.indexOf(tx)) throw new Error('commit refused');
      tx.committed = true;
    },
    abort: async () => {
      open = null;
    },
    disconnect: async () => {},
  };
  return { client, txs, hold: () => (commitGate.held = true), release: () => { commitGate.held = false; releaseCommit?.(); } };
}

const store: CheckpointStore<{ rows: number }> = {
  checkpointsTopic: 'cp',
  group: 'g',
  key: () => 'backfill:r',
  encode: (c) => JSON.stringify(c),
  decode: (t) => (t ? (JSON.parse(t) as { rows: number }) : null),
  offset: (c) => c.rows,
};
const rec = (v: string) => ({ key: 'k', value: Buffer.from(v) });

async function setUp(options: { failCommit?: number; maxWaitingBytes?: number } = {}) {
  const recording = recordingClient(options);
  const producer = new CheckpointedProducer(recording.client, { changesTopic: 'changes', store });
  await producer.connect();
  return { ...recording, pipeline: new ChunkPipeline(producer, options.maxWaitingBytes ?? 1024 * 1024) };
}

describe('backfill chunk pipeline', () => {
  it('reads the next chunk while one commits; each transaction holds its chunk and the checkpoint past it', async () => {
    const { pipeline, txs, hold, release } = await setUp();
    const committed: number[] = [];
    await pipeline.add(rec('a1'));
    await pipeline.add(rec('a2'));
    hold();
    await pipeline.commit({ rows: 2 }, () => committed.push(2));
    // The first commit is held: these wait, no transaction is open for them yet.
    await pipeline.add(rec('b1'));
    await pipeline.add(rec('b2'));
    assert.equal(txs.length, 1);
    assert.equal(committed.length, 0);
    release();
    await pipeline.add(rec('b3')); // opens the next transaction once the first is committed
    await pipeline.commit({ rows: 5 }, () => committed.push(5));
    await pipeline.settled();
    assert.deepEqual(committed, [2, 5]);
    assert.deepEqual(
      txs.map((t) => ({ records: t.records, checkpoint: t.checkpoint, committed: t.committed })),
      [
        { records: ['a1', 'a2'], checkpoint: '{"rows":2}', committed: true },
        { records: ['b1', 'b2', 'b3'], checkpoint: '{"rows":5}', committed: true },
      ],
    );
  });

  it('past its bound, reading waits for the commit instead of holding more', async () => {
    const { pipeline, txs, hold, release } = await setUp({ maxWaitingBytes: 8 });
    await pipeline.add(rec('a1'));
    hold();
    await pipeline.commit({ rows: 1 }, () => {});
    await pipeline.add(rec('b1234567')); // 9 bytes with its key: the bound is reached
    let added = false;
    const adding = (async () => pipeline.add(rec('b2')))().then(() => (added = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(added, false, 'add went on past the bound while the commit was in flight');
    release();
    await adding;
    await pipeline.commit({ rows: 3 }, () => {});
    await pipeline.settled();
    assert.deepEqual(txs[1]!.records, ['b1234567', 'b2']);
  });

  it('a failed commit fails the next call, and the chunk read meanwhile is never committed', async () => {
    const { pipeline, txs } = await setUp({ failCommit: 0 });
    const committed: number[] = [];
    await pipeline.add(rec('a1'));
    await pipeline.commit({ rows: 1 }, () => committed.push(1));
    await (async () => pipeline.add(rec('b1')))().catch(() => {}); // may be taken before the failure is known
    await assert.rejects(async () => {
      await pipeline.add(rec('b2'));
      await pipeline.commit({ rows: 3 }, () => committed.push(3));
      await pipeline.settled();
    }, /commit refused/);
    await pipeline.abort();
    assert.equal(committed.length, 0);
    assert.equal(txs.filter((t) => t.committed).length, 0);
  });
});
