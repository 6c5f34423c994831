import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import { RedisSink, readRow } from '../../src/core/sinks/redis/sink.js';
import type { SinkRecord } from '../../src/core/sinks/contract.js';
import type { ChangeEvent } from '../../src/core/event/index.js';
import { change } from '../helpers/events.js';
import { redisSinkFixture } from '../helpers/redis-sink.js';

describe('Redis sink (read model) on the real Redis', () => {
  const fx = redisSinkFixture('rs');
  const { prefix, sink, config } = fx;
  const records = (events: ChangeEvent[]): SinkRecord[] => events.map((event, i) => ({ event, topic: 'x', partition: 0, offset: String(i) }));
  const row = (id: number) => readRow(fx.redis, prefix, 'public.t', { id });

  it('writes rows, and an older change replayed after a newer one changes nothing', async () => {
    const v1 = change('insert', '0/100', 0, { id: 1 }, { id: 1, name: 'a', n: '1' });
    const v2 = change('update', '0/200', 0, { id: 1 }, { id: 1, name: 'b', n: '2' });
    assert.deepEqual(await sink.write(records([v1, v2])), [{ ok: true }, { ok: true }]);
    assert.deepEqual(await row(1), { id: 1, name: 'b', n: '2' });
    await sink.write(records([v1])); // a re-delivery, or a late backfill read
    assert.deepEqual(await row(1), { id: 1, name: 'b', n: '2' });
  });

  it('keeps the old value of an unchanged TOASTed column, and drops columns no longer in the row', async () => {
    await sink.write(records([change('insert', '0/300', 0, { id: 2 }, { id: 2, big: 'x'.repeat(10), old: 1 })]));
    await sink.write(records([change('update', '0/300', 1, { id: 2 }, { id: 2, small: 5 }, { unchanged: ['big'] })]));
    assert.deepEqual(await row(2), { id: 2, big: 'x'.repeat(10), small: 5 });
  });

  it('deletes the row, and a replayed older insert does not bring it back', async () => {
    const ins = change('insert', '0/400', 0, { id: 3 }, { id: 3 });
    await sink.write(records([ins, change('delete', '0/401', 0, { id: 3 }, null)]));
    assert.equal(await row(3), null);
    await sink.write(records([ins]));
    assert.equal(await row(3), null);
  });

  it('truncate clears the table; older changes stay out, newer ones come in', async () => {
    await sink.write(records([change('insert', '0/500', 0, { id: 4 }, { id: 4 }), change('insert', '0/500', 1, { id: 5 }, { id: 5 })]));
    await sink.write(records([change('truncate', '0/600', 0, null, null)]));
    assert.equal(await row(4), null);
    assert.equal(await row(5), null);
    assert.equal(await row(1), null);
    await sink.write(records([change('insert', '0/500', 0, { id: 4 }, { id: 4 })]));
    assert.equal(await row(4), null, 'a change older than the truncate must stay out');
    await sink.write(records([change('insert', '0/700', 0, { id: 6 }, { id: 6 })]));
    assert.deepEqual(await row(6), { id: 6 });
  });

  it('stores consumed offsets in the same step, never moving them back', async () => {
    await sink.write(records([change('insert', '0/800', 0, { id: 7 }, { id: 7 })]), { group: 'g1', next: { 'topic:0': '42', 'topic:1': '7' } });
    await sink.write([], { group: 'g1', next: { 'topic:0': '40' } });
    assert.deepEqual(await sink.storedOffsets('g1'), { 'topic:0': '42', 'topic:1': '7' });
  });

  it('reports a retryable failure for every record when the batch cannot run, and writes none of it', async () => {
    // A version hash of the wrong type makes the script fail with WRONGTYPE half way.
    await fx.redis.set(`${prefix}ver:public.t`, 'not a hash');
    const batch = records([change('insert', '0/900', 0, { id: 8 }, { id: 8 }), change('insert', '0/900', 1, { id: 9 }, { id: 9 })]);
    const results = await sink.write(batch, { group: 'g2', next: { 'topic:0': '99' } });
    assert.equal(results.length, 2);
    for (const r of results) {
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.permanent, false);
        assert.equal(r.errorClass, 'redis_error');
        assert.match(r.message, /WRONGTYPE/);
      }
    }
    assert.deepEqual(await sink.storedOffsets('g2'), {}, 'offsets must not move past a batch that failed');
    await fx.redis.del(`${prefix}ver:public.t`);
  });

  it('fails fast, not queueing, when Redis is not there', async () => {
    const started = Date.now();
    await assert.rejects(new RedisSink({ ...config, port: 49153 }, silentLogger).start(), /ECONNREFUSED/);
    assert.ok(Date.now() - started < 5000);
  });
});
