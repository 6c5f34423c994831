import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prepare, type Prepared } from '../../src/core/delivery/prepare.js';
import { SharedTransforms, type TransformCacheLimits } from '../../src/core/delivery/transform-once.js';

/** A transform that counts its calls and marks each result with the call number. */
function counting(): { calls: string[]; transform: (raw: string | null) => Prepared } {
  const calls: string[] = [];
  return {
    calls,
    transform: (raw) => {
      calls.push(raw ?? '');
      if (raw === 'bad') return { ok: false, eventId: 'e-bad', errorClass: 'invalid_row', message: 'after.v: bad' };
      return { ok: true, event: { id: `call-${calls.length}`, after: { v: raw } } as never };
    },
  };
}

const roomy: TransformCacheLimits = { maxEntries: 100, maxBytes: 1024 * 1024 };

describe('SharedTransforms: each record transformed once for every sink of a process', () => {
  it('three sinks reading the same records in any order: one transform each, the same result for all', () => {
    const { calls, transform } = counting();
    const shared = new SharedTransforms(transform, 3, roomy);
    const results = ['a', 'b', 'c'].map((raw, offset) => shared.prepare('t', 0, offset, raw));
    // The other two sinks, at their own pace: the second one reads offsets 2, 1, 0.
    const second = [2, 1, 0].map((offset) => shared.prepare('t', 0, offset, ['a', 'b', 'c'][offset]!));
    const third = [0, 1, 2].map((offset) => shared.prepare('t', 0, offset, ['a', 'b', 'c'][offset]!));
    assert.deepEqual(calls, ['a', 'b', 'c']);
    assert.deepEqual(second.reverse(), results);
    assert.deepEqual(third, results);
    assert.ok(third.every((r, i) => r === results[i]), 'the same object, not a copy');
    assert.equal(shared.size, 0, 'the last sink to take a record removes it');
  });

  it('an invalid record is validated once; each sink still gets the failure (for its own dead letter)', () => {
    const { calls, transform } = counting();
    const shared = new SharedTransforms(transform, 3, roomy);
    const seen = [0, 1, 2].map(() => shared.prepare('t', 1, '41', 'bad'));
    assert.equal(calls.length, 1);
    for (const p of seen) assert.deepEqual(p, { ok: false, eventId: 'e-bad', errorClass: 'invalid_row', message: 'after.v: bad' });
  });

  it('positions are per topic and partition: the same offset elsewhere is another record', () => {
    const { calls, transform } = counting();
    const shared = new SharedTransforms(transform, 2, roomy);
    shared.prepare('t', 0, 5, 'x');
    shared.prepare('t', 1, 5, 'x');
    shared.prepare('u', 0, 5, 'x');
    assert.equal(calls.length, 3);
  });

  it('other text at the same position (a topic made again) is transformed again, never served stale', () => {
    const { calls, transform } = counting();
    const shared = new SharedTransforms(transform, 3, roomy);
    shared.prepare('t', 0, 0, 'old');
    const fresh = shared.prepare('t', 0, 0, 'new');
    assert.deepEqual(calls, ['old', 'new']);
    assert.equal(fresh.ok && (fresh.event.after as { v: string }).v, 'new');
    // The new text is what the third sink gets from the cache.
    const third = shared.prepare('t', 0, 0, 'new');
    assert.equal(third, fresh);
  });

  it('bounded: a sink further behind than the cache computes its own; the cache never grows past its limit', () => {
    const { calls, transform } = counting();
    const shared = new SharedTransforms(transform, 2, { maxEntries: 3, maxBytes: 1024 * 1024 });
    for (let offset = 0; offset < 10; offset++) shared.prepare('t', 0, offset, `r${offset}`);
    assert.equal(shared.size, 3);
    // The slow sink: offsets 0..6 were dropped (oldest first), 7..9 are shared.
    for (let offset = 0; offset < 10; offset++) shared.prepare('t', 0, offset, `r${offset}`);
    assert.equal(calls.length, 10 + 7);
    assert.ok(shared.size <= 3);
  });

  it('bounded by bytes too; a record too big for the cache is computed by each sink', () => {
    const { calls, transform } = counting();
    const shared = new SharedTransforms(transform, 2, { maxEntries: 1000, maxBytes: 4000 });
    const big = 'x'.repeat(2000);
    shared.prepare('t', 0, 0, big);
    shared.prepare('t', 0, 0, big);
    assert.equal(calls.length, 2);
    for (let offset = 1; offset <= 20; offset++) shared.prepare('t', 0, offset, 'y'.repeat(100));
    // Each entry is estimated at 3 x 100 + 200 bytes: at most 8 fit in 4,000.
    assert.ok(shared.size <= 8, `size ${shared.size}`);
  });

  it('one sink in the process (split layout): nothing is kept', () => {
    const { calls, transform } = counting();
    const shared = new SharedTransforms(transform, 1, roomy);
    shared.prepare('t', 0, 0, 'a');
    shared.prepare('t', 0, 0, 'a');
    assert.equal(calls.length, 2);
    assert.equal(shared.size, 0);
  });

  it('a shared event is frozen: a sink cannot change what the others get', () => {
    const raw = JSON.stringify({
      id: 'c-0000000001000000-0', version: 1, op: 'insert', schema: 'public', table: 't', key: { id: 1 }, before: null, after: { id: 1, v: 'a' },
      lsn: '0/1000000', position: 0, xid: 1, commit_ts: '2025-06-01T12:00:00Z', source: { pipeline: 'p', db: 'd', kind: 'cdc' },
    });
    const shared = new SharedTransforms((r) => prepare(r, () => [], (e) => ({ ...e })), 3, roomy);
    const p = shared.prepare('t', 0, 0, raw);
    assert.ok(p.ok, JSON.stringify(p));
    assert.throws(() => {
      (p.event.after as Record<string, unknown>)['v'] = 'changed';
    }, TypeError);
    assert.equal((shared.prepare('t', 0, 0, raw) as Extract<Prepared, { ok: true }>).event.after?.['v'], 'a');
  });

  it('counts computed and shared transforms, valid or not', () => {
    const { transform } = counting();
    const seen: string[] = [];
    const shared = new SharedTransforms(transform, 3, roomy, (outcome, valid) => seen.push(`${outcome}:${valid}`));
    for (let sink = 0; sink < 3; sink++) {
      shared.prepare('t', 0, 0, 'a');
      shared.prepare('t', 0, 1, 'bad');
    }
    assert.deepEqual(seen.sort(), ['computed:false', 'computed:true', 'shared:false', 'shared:false', 'shared:true', 'shared:true']);
  });
});
