import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backfillEventId,
  canonicalJson,
  changeEventId,
  compareLsn,
  formatLsn,
  parseLsn,
  recordKey,
  validateEvent,
  type ChangeEvent,
} from '../../src/core/event/index.js';

const base = (): ChangeEvent => ({
  id: changeEventId('16/B374D848', 0),
  version: 1,
  op: 'insert',
  schema: 'public',
  table: 'orders',
  key: { id: 1 },
  before: null,
  after: { id: 1, total: '12.50' },
  lsn: '16/B374D848',
  position: 0,
  xid: 731,
  commit_ts: '2026-11-24T21:00:00.000Z',
  source: { pipeline: 'default', db: 'shop', kind: 'cdc', slot: 'streamctl_default' },
});

describe('event envelope v1', () => {
  it('accepts each kind of change', () => {
    const insert = base();
    const update: ChangeEvent = { ...base(), op: 'update', before: { id: 1 }, after: { id: 1, total: '13' }, unchanged: ['notes'] };
    const del: ChangeEvent = { ...base(), op: 'delete', before: { id: 1 }, after: null };
    const truncate: ChangeEvent = { ...base(), op: 'truncate', key: null, before: null, after: null };
    const read: ChangeEvent = {
      ...base(),
      id: backfillEventId('run1', 'public', 'orders', { id: 1 }),
      op: 'read',
      xid: null,
      source: { pipeline: 'default', db: 'shop', kind: 'backfill', run: 'run1' },
    };
    for (const event of [insert, update, del, truncate, read]) {
      const v = validateEvent(event);
      assert.ok(v.ok, `${event.op}: ${v.ok ? '' : v.errors.join('; ')}`);
    }
  });

  const rejects = (name: string, mutate: (e: Record<string, unknown>) => void, expect: RegExp): void => {
    it(`rejects ${name}`, () => {
      const event = base() as unknown as Record<string, unknown>;
      mutate(event);
      const v = validateEvent(event);
      assert.equal(v.ok, false);
      if (!v.ok) assert.ok(v.errors.some((e) => expect.test(e)), v.errors.join('; '));
    });
  };
  rejects('a missing id', (e) => delete e['id'], /must have required property 'id'/);
  rejects('an unknown op', (e) => (e['op'] = 'upsert'), /\/op: must be equal to one of the allowed values/);
  rejects('an insert without an after image', (e) => (e['after'] = null), /\/after: must be object/);
  rejects('a delete with an after image', (e) => (e['op'] = 'delete'), /\/after: must be null/);
  rejects('a malformed LSN', (e) => (e['lsn'] = '16-B374'), /\/lsn: must match pattern/);
  rejects('a malformed commit time', (e) => (e['commit_ts'] = 'yesterday'), /\/commit_ts: must match format "date-time"/);
  rejects('an unknown field', (e) => (e['extra'] = 1), /must NOT have additional properties/);
  rejects('a future envelope version', (e) => (e['version'] = 2), /\/version: must be equal to constant/);
  rejects('a read that is not from a backfill run', (e) => (e['op'] = 'read'), /\/source\/kind: must be equal to constant|run/);
  rejects('a captured change without its position', (e) => delete e['position'], /must have required property 'position'/);
  rejects('a non-object', (e) => Object.keys(e).forEach((k) => delete e[k]), /must have required property/);
});

describe('stable event ids', () => {
  it('is the same for the same change read again, different for another position', () => {
    assert.equal(changeEventId('16/B374D848', 3), changeEventId('16/B374D848', 3));
    assert.equal(changeEventId('16/B374D848', 3), 'c-00000016B374D848-3');
    assert.notEqual(changeEventId('16/B374D848', 3), changeEventId('16/B374D848', 4));
    assert.notEqual(changeEventId('16/B374D848', 3), changeEventId('16/B374D849', 3));
  });

  it('sorts captured ids of one position in LSN order', () => {
    assert.ok(changeEventId('9/0', 0) < changeEventId('10/0', 0));
  });

  it('gives a backfill row the same id whatever the key column order, per run', () => {
    const a = backfillEventId('run1', 'public', 't', { a: 1, b: 'x' });
    assert.equal(a, backfillEventId('run1', 'public', 't', { b: 'x', a: 1 }));
    assert.notEqual(a, backfillEventId('run2', 'public', 't', { a: 1, b: 'x' }));
    assert.notEqual(a, backfillEventId('run1', 'public', 'u', { a: 1, b: 'x' }));
    assert.notEqual(a, backfillEventId('run1', 'public', 't', { a: 2, b: 'x' }));
    assert.match(a, /^r-run1-[A-Za-z0-9_-]{22}$/);
  });

  it('rejects inputs that would make ambiguous ids', () => {
    assert.throws(() => changeEventId('0/1', -1), RangeError);
    assert.throws(() => changeEventId('0/1', 1.5), RangeError);
    assert.throws(() => backfillEventId('run 1', 's', 't', { a: 1 }), RangeError);
  });

  it('keys Kafka records by table and canonical primary key', () => {
    assert.equal(recordKey('public', 'orders', { b: 2, a: 1 }), 'public.orders:{"a":1,"b":2}');
    assert.equal(recordKey('public', 'orders', null), 'public.orders:*');
  });

  it('writes canonical JSON with sorted keys at every depth', () => {
    assert.equal(canonicalJson({ b: [{ d: 1, c: 2 }], a: null, z: undefined }), '{"a":null,"b":[{"c":2,"d":1}]}');
  });
});

describe('LSN', () => {
  it('parses and formats round trip', () => {
    for (const text of ['0/0', '16/B374D848', 'FFFFFFFF/FFFFFFFF']) assert.equal(formatLsn(parseLsn(text)), text);
    assert.equal(parseLsn('1/0'), 4294967296n);
  });
  it('compares numerically, not as text', () => {
    assert.equal(compareLsn('9/0', '10/0'), -1);
    assert.equal(compareLsn('A/10', 'A/9'), 1);
    assert.equal(compareLsn('0/5', '0/5'), 0);
  });
  it('rejects garbage', () => {
    assert.throws(() => parseLsn('xyz'), RangeError);
    assert.throws(() => parseLsn('1/2/3'), RangeError);
  });
});
