import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SinkRecord } from '../../src/core/sinks/contract.js';
import type { ChangeEvent } from '../../src/core/event/index.js';
import { readRow } from '../../src/core/sinks/redis/sink.js';
import { change } from '../helpers/events.js';
import { redisSinkFixture } from '../helpers/redis-sink.js';

/**
 * A primary-key change in the Redis read model, with the two events in either order (they
 * live in different partitions) and replayed: only the new key remains, with the unchanged
 * TOASTed column carried over from the old row, and no replay brings the old key back.
 */
describe('Redis sink: a primary-key change in either partition order', () => {
  const fx = redisSinkFixture('rkc');
  const { prefix, sink } = fx;
  const write = (events: ChangeEvent[]) => sink.write(events.map((event, i): SinkRecord => ({ event, topic: 'x', partition: 0, offset: String(i) })));
  const row = (id: number) => readRow(fx.redis, prefix, 'public.t', { id });
  const doc = 'd'.repeat(5000);

  /** insert id=from with a TOASTed doc, an update, then `UPDATE SET id = to` with doc unchanged. */
  const history = (from: number, to: number, lsn: number) => {
    const hex = (n: number) => `0/${n.toString(16).toUpperCase()}`;
    const insert = change('insert', hex(lsn), 0, { id: from }, { id: from, name: 'a', doc });
    const update = change('update', hex(lsn + 1), 0, { id: from }, { id: from, name: 'b' }, { unchanged: ['doc'] });
    const moveOut = change('delete', hex(lsn + 2), 0, { id: from }, null, { before: { id: from }, moved_to: { id: to } });
    const moveIn = change('update', hex(lsn + 2), 1, { id: to }, { id: to, name: 'b' }, { before: { id: from }, unchanged: ['doc'], moved_from: { id: from } });
    return { insert, update, moveOut, moveIn };
  };

  it('old partition first: the old row is kept aside and the update takes its TOASTed column', async () => {
    const h = history(1, 11, 0x100);
    await write([h.insert, h.update, h.moveOut]);
    await write([h.moveIn]);
    assert.equal(await row(1), null);
    assert.deepEqual(await row(11), { id: 11, name: 'b', doc });
    assert.deepEqual(await fx.redis.keys(`${prefix}moved:*`), [], 'nothing left aside');
  });

  it('new partition first: the update waits for the column, the delete fills it', async () => {
    const h = history(2, 12, 0x200);
    await write([h.moveIn]);
    assert.deepEqual(await row(12), { id: 12, name: 'b' }, 'the doc is not known yet');
    await write([h.insert, h.update, h.moveOut]);
    assert.equal(await row(2), null);
    assert.deepEqual(await row(12), { id: 12, name: 'b', doc });
    assert.deepEqual(await fx.redis.keys(`${prefix}pend:*`), [], 'nothing left waiting');
  });

  it('a newer value of the column ends the wait: the delete does not overwrite it', async () => {
    const h = history(3, 13, 0x300);
    const newer = change('update', '0/400', 0, { id: 13 }, { id: 13, name: 'c', doc: 'fresh' });
    await write([h.moveIn, newer]);
    await write([h.insert, h.update, h.moveOut]);
    assert.deepEqual(await row(13), { id: 13, name: 'c', doc: 'fresh' });
  });

  it('replays of either partition, in any order, change nothing', async () => {
    const h = history(4, 14, 0x500);
    await write([h.insert, h.update, h.moveOut]);
    await write([h.moveIn]);
    await write([h.moveIn]);
    await write([h.insert, h.update, h.moveOut]);
    await write([h.insert]);
    assert.equal(await row(4), null, 'the old key stays gone (its delete is a tombstone)');
    assert.deepEqual(await row(14), { id: 14, name: 'b', doc });
  });
});
