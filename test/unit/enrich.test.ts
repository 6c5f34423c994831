import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import type { EnrichConfig, TableEnrichment } from '../../src/core/config/types.js';
import { EnrichError, MASK_PREFIX, makeEnricher, maskValue } from '../../src/core/delivery/enrich.js';
import type { ChangeEvent } from '../../src/core/event/envelope.js';
import { recordKey } from '../../src/core/event/identity.js';

const MASK_KEY = 'mask-key-0123456789abcdef';
const NOW = new Date('2025-06-01T12:34:56.789Z');
const clock = () => NOW;

const table = (t: Partial<TableEnrichment>): TableEnrichment => ({ drop: [], rename: {}, mask: [], add: {}, ...t });
const config = (tables: Record<string, TableEnrichment>, stamp = false): EnrichConfig => ({ tables, maskKey: '', maskKeyFile: '', stamp });

function event(overrides: Partial<ChangeEvent> = {}): ChangeEvent {
  return {
    id: 'c-0000000001000000-0',
    version: 1,
    op: 'update',
    schema: 'public',
    table: 'users',
    key: { id: '42', email: 'ann@example.com' },
    before: { id: '42', email: 'ann@example.com', name: 'Ann', secret: 's1', bio: null },
    after: { id: '42', email: 'ann@example.com', name: 'Ann B', secret: 's2', bio: null, meta: { a: [1, 2] } },
    unchanged: ['avatar', 'secret', 'legacy_name'],
    lsn: '0/1000000',
    position: 0,
    xid: 7,
    commit_ts: '2025-06-01T12:00:00.000000Z',
    source: { pipeline: 'p1', db: 'app', kind: 'cdc', slot: 's' },
    ...overrides,
  };
}

const deepFreeze = <T>(value: T): T => {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
};

describe('enrichment', () => {
  it('masks with HMAC-SHA256 of the canonical JSON: stable, key-dependent, null stays null', () => {
    const expected = MASK_PREFIX + createHmac('sha256', MASK_KEY).update('"ann@example.com"').digest('hex');
    assert.equal(maskValue('ann@example.com', MASK_KEY), expected);
    assert.equal(maskValue('ann@example.com', MASK_KEY), maskValue('ann@example.com', MASK_KEY));
    assert.notEqual(maskValue('ann@example.com', MASK_KEY), maskValue('ann@example.com', 'another-key'));
    assert.notEqual(maskValue('ann@example.com', MASK_KEY), maskValue('bob@example.com', MASK_KEY));
    assert.notEqual(maskValue('1', MASK_KEY), maskValue(1, MASK_KEY), 'a type is part of the value');
    assert.equal(maskValue({ b: 1, a: 2 }, MASK_KEY), maskValue({ a: 2, b: 1 }, MASK_KEY), 'canonical JSON: key order does not matter');
    assert.equal(maskValue(null, MASK_KEY), null);
  });

  it('applies drop, rename, mask, add in order to after and before, and drop/rename/mask to key alike', () => {
    const enrich = makeEnricher(
      config({ 'public.users': table({ drop: ['secret'], rename: { name: 'full_name', email: 'contact' }, mask: ['contact', 'bio'], add: { region: 'eu', tier: 2 } }) }),
      MASK_KEY,
      'p1',
      clock,
    );
    const out = enrich(event());
    const masked = maskValue('ann@example.com', MASK_KEY);
    assert.deepEqual(out.after, { id: '42', contact: masked, full_name: 'Ann B', bio: null, meta: { a: [1, 2] }, region: 'eu', tier: 2 });
    assert.deepEqual(out.before, { id: '42', contact: masked, full_name: 'Ann', bio: null, region: 'eu', tier: 2 });
    assert.deepEqual(out.key, { id: '42', contact: masked }, 'key renamed and masked like the row, no static fields');
    assert.equal(out.key?.['contact'], out.after?.['contact'], 'a masked key column joins with the masked row column');
    assert.deepEqual(out.unchanged, ['avatar', 'legacy_name'], 'a dropped column leaves unchanged too');
  });

  it('the record key stays stable across events, masking included', () => {
    const enrich = makeEnricher(config({ 'public.users': table({ mask: ['email'] }) }), MASK_KEY, 'p1', clock);
    const a = enrich(event());
    const b = enrich(event({ id: 'c-0000000002000000-0', op: 'delete', after: null, lsn: '0/2000000' }));
    assert.equal(recordKey(a.schema, a.table, a.key), recordKey(b.schema, b.table, b.key));
    assert.notEqual(recordKey(a.schema, a.table, a.key), recordKey('public', 'users', event().key));
    assert.equal(b.after, null);
  });

  it('a mask may name the source column of a rename: the value is still masked', () => {
    const enrich = makeEnricher(config({ 'public.users': table({ rename: { email: 'contact' }, mask: ['email'] }) }), MASK_KEY, 'p1');
    const out = enrich(event());
    assert.equal(out.after?.['contact'], maskValue('ann@example.com', MASK_KEY));
    assert.equal(out.key?.['contact'], maskValue('ann@example.com', MASK_KEY));
    assert.ok(!JSON.stringify(out).includes('ann@example.com'));
  });

  it('renames unchanged columns; swaps and a rename over an existing name are well defined', () => {
    const swap = makeEnricher(config({ 'public.users': table({ rename: { legacy_name: 'old_name', id: 'email', email: 'id' } }) }), '', 'p1');
    const out = swap(event());
    assert.deepEqual(out.unchanged, ['avatar', 'secret', 'old_name']);
    assert.deepEqual(out.key, { email: '42', id: 'ann@example.com' });

    const over = makeEnricher(config({ 'public.users': table({ rename: { name: 'email' } }) }), '', 'p1');
    assert.equal(over(event()).after?.['email'], 'Ann B', 'the renamed column wins');
    assert.throws(
      () => makeEnricher(config({ 'public.users': table({ rename: { a: 'x', b: 'x' } }) }), '', 'p1'),
      /public\.users\.rename: 'a' and 'b' are both renamed to 'x'/,
    );
  });

  it('a column named __proto__ stays a column through drop, rename and mask (it does not set the row\'s prototype)', () => {
    const row = (): Record<string, unknown> => {
      const r: Record<string, unknown> = { id: '42', name: 'Ann' };
      Object.defineProperty(r, '__proto__', { value: 'p', enumerable: true, writable: true, configurable: true });
      return r;
    };
    const masked = makeEnricher(config({ 'public.users': table({ mask: ['__proto__'], drop: ['name'] }) }), MASK_KEY, 'p1')(event({ before: null, after: row() }));
    assert.deepEqual(Object.keys(masked.after!), ['id', '__proto__']);
    assert.equal(masked.after!['__proto__'], maskValue('p', MASK_KEY));
    assert.equal(Object.getPrototypeOf(masked.after), Object.prototype);
    const renamed = makeEnricher(config({ 'public.users': table({ rename: { name: '__proto__' }, add: { __proto__x: 1 } }) }), '', 'p1')(event({ before: null, after: { id: '42', name: 'Ann' } }));
    assert.equal(JSON.stringify(renamed.after), '{"id":"42","__proto__":"Ann","__proto__x":1}');
  });

    it('a dropped key column is masked in the key (rows must not collapse into one key), and needs the mask key', () => {
    const enrich = makeEnricher(config({ 'public.users': table({ drop: ['email'] }) }), MASK_KEY, 'p1');
    const out = enrich(event());
    assert.deepEqual(out.key, { id: '42', email: maskValue('ann@example.com', MASK_KEY) });
    assert.ok(!('email' in (out.after ?? {})) && !('email' in (out.before ?? {})));

    const keyless = makeEnricher(config({ 'public.users': table({ drop: ['secret'] }) }), '', 'p1');
    assert.ok(!('secret' in (keyless(event()).after ?? {})), 'dropping a non-key column needs no mask key');
    const noKey = makeEnricher(config({ 'public.users': table({ drop: ['email'] }) }), '', 'p1');
    assert.throws(() => noKey(event()), (err: Error) => err instanceof EnrichError && /key column/.test(err.message));
  });

  it('masking without a mask key is refused at construction', () => {
    assert.throws(() => makeEnricher(config({ 'public.users': table({ mask: ['email'] }) }), '', 'p1'), /public\.users\.mask: .*enrich\.maskKey/);
  });

  it('stamps after (only) with processed_at and the pipeline', () => {
    const enrich = makeEnricher(config({}, true), '', 'pipe-7', clock);
    const out = enrich(event());
    assert.deepEqual(out.after?.['_streamctl'], { processed_at: '2025-06-01T12:34:56.789Z', pipeline: 'pipe-7' });
    assert.ok(!('_streamctl' in (out.before ?? {})));
    assert.ok(!('_streamctl' in (out.key ?? {})));
    const deleted = enrich(event({ op: 'delete', after: null }));
    assert.equal(deleted.after, null, 'a delete gets no row from the stamp');
    assert.ok(!('_streamctl' in (makeEnricher(config({}, false), '', 'p', clock)(event()).after ?? {})));
  });

  it('stamps configured tables too, after the static fields', () => {
    const enrich = makeEnricher(config({ 'public.users': table({ add: { region: 'eu' } }) }, true), '', 'p1', clock);
    const after = enrich(event()).after ?? {};
    assert.deepEqual(Object.keys(after).slice(-2), ['region', '_streamctl']);
  });

  it('leaves tables without configuration as they are (a copy)', () => {
    const enrich = makeEnricher(config({ 'public.users': table({ drop: ['name'], mask: ['email'] }) }), MASK_KEY, 'p1', clock);
    const input = event({ table: 'orders' });
    const out = enrich(input);
    assert.deepEqual(out, input);
    assert.notEqual(out, input);
    assert.notEqual(out.after, input.after);
  });

  it('never mutates the input event', () => {
    const enrich = makeEnricher(
      config({ 'public.users': table({ drop: ['secret'], rename: { name: 'full_name' }, mask: ['email'], add: { region: 'eu' } }) }, true),
      MASK_KEY,
      'p1',
      clock,
    );
    const input = deepFreeze(event());
    const snapshot = structuredClone(input);
    const out = enrich(input); // frozen: any write would throw in strict mode
    assert.deepEqual(input, snapshot);
    assert.notDeepEqual(out, input);
    out.after!['x'] = 1;
    out.source.db = 'changed';
    assert.deepEqual(input, snapshot, 'the output shares no row or source object with the input');
  });
});
