import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readRow } from '../../src/core/sinks/redis/sink.js';
import { SINK_STATE_LOST, type SinkRecord } from '../../src/core/sinks/contract.js';
import { change } from '../helpers/events.js';
import { redisSinkFixture } from '../helpers/redis-sink.js';

describe('Redis sink generation markers on the real Redis', () => {
  const fx = redisSinkFixture('rg');
  const { prefix, sink } = fx;
  const record = (id: number): SinkRecord[] => [{ event: change('insert', '0/100', id, { id }, { id }), topic: 't', partition: 0, offset: String(id) }];

  it('writes when the partition carries the generation, and refuses (writing nothing) once the marker is gone', async () => {
    await sink.markState('g', { 't:0': 'gen-1' });
    assert.deepEqual(await sink.stateMarkers('g'), { 't:0': 'gen-1' });
    assert.deepEqual(await sink.write(record(1), { group: 'g', next: { 't:0': '2' }, generation: 'gen-1' }), [{ ok: true }]);
    assert.deepEqual(await readRow(fx.redis, prefix, 'public.t', { id: 1 }), { id: 1 });

    await fx.redis.del(`${prefix}gen:g`); // the read model emptied behind the pipeline's back
    const [r] = await sink.write(record(2), { group: 'g', next: { 't:0': '3' }, generation: 'gen-1' });
    assert.equal(r!.ok, false);
    assert.equal(r!.ok === false && r!.errorClass, SINK_STATE_LOST);
    assert.equal(await readRow(fx.redis, prefix, 'public.t', { id: 2 }), null);
    assert.deepEqual(await sink.storedOffsets('g'), { 't:0': '2' }, 'the offsets must not move either');
  });

  it('refuses a write carrying another generation (a rebuild minted a new one)', async () => {
    await sink.markState('g', { 't:0': 'gen-2' });
    const [r] = await sink.write(record(3), { group: 'g', next: { 't:0': '4' }, generation: 'gen-1' });
    assert.equal(r!.ok, false);
    assert.equal(await readRow(fx.redis, prefix, 'public.t', { id: 3 }), null);
  });
});
