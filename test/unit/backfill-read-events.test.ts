import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { keyOf } from '../../src/core/backfill/plan.js';
import { ReadEventEncoder, readEvent, type ChunkContext } from '../../src/core/backfill/read-events.js';
import { RecordArena } from '../../src/core/backfill/record-arena.js';
import type { Row } from '../../src/core/event/envelope.js';
import { backfillEventId } from '../../src/core/event/identity.js';
import { encodeEvent } from '../../src/core/event/oversize.js';

/** The backfill's fast encoder against the event contract's own: the same ids and the same bytes. */
const context = (overrides: Partial<ChunkContext> = {}): ChunkContext => ({
  run: 'bf-20261201T101500Z-a1b2c3',
  table: { schema: 'public', table: 'orders' },
  keyColumns: ['id'],
  snapshotLsn: '0/16B3748',
  readAt: '2026-12-01T10:15:00.123Z',
  source: { pipeline: 'shop', db: 'app', kind: 'backfill', run: 'bf-20261201T101500Z-a1b2c3' },
  maxRecordBytes: 1024 * 1024,
  ...overrides,
});

function expected(ctx: ChunkContext, after: Row) {
  const key = keyOf(after, ctx.keyColumns);
  const event = readEvent(ctx, backfillEventId(ctx.run, ctx.table.schema, ctx.table.table, key), key, after);
  return encodeEvent(event, ctx.maxRecordBytes);
}

const rows: Row[] = [
  { id: '1', status: 'paid', amount: '12.50', quantity: 3, score: 0.1 + 0.2, active: true, note: null },
  { id: '9223372036854775807', status: 'quote " and \\ backslash', tags: ['a', null, 'c"d'], attrs: '{"items": 3, "n": 12345678901234567890}' },
  { id: '-0', status: 'ünïcödé ✓ 🚀 \u2028 line sep', note: '\u0000\u0001\t\n control', score: -0, big: 'NaN' },
  { id: '42', nested: [[1, 2], [3, null]], when: '2026-01-02T03:04:05.123456Z', bytes: 'AAEC/w==' },
];

describe('backfill read events', () => {
  it('gives the ids, record keys and event JSON of encodeEvent, byte for byte', () => {
    const ctx = context();
    const encoder = new ReadEventEncoder(ctx);
    for (const after of rows) {
      const want = expected(ctx, after);
      const got = encoder.encode(after);
      assert.equal(got.key, want.key.toString());
      assert.equal(got.value.toString(), want.value.toString());
      assert.ok(got.value.equals(want.value));
      assert.equal(got.oversize, null);
    }
  });

  it('keeps the key canonical (sorted) for a composite key listed in another order, and odd schema and table names', () => {
    const ctx = context({ table: { schema: 'My "Schema"', table: 'Ördér\\Lines' }, keyColumns: ['tenant', 'id'] });
    const encoder = new ReadEventEncoder(ctx);
    const after = { tenant: 'acme', id: '7', value: 'x' };
    const want = expected(ctx, after);
    const got = encoder.encode(after);
    assert.equal(got.key, want.key.toString());
    assert.ok(got.value.equals(want.value));
    assert.match(got.key, /\{"id":"7","tenant":"acme"\}$/);
    assert.equal(JSON.parse(got.value.toString()).id, backfillEventId(ctx.run, ctx.table.schema, ctx.table.table, { id: '7', tenant: 'acme' }));
  });

  it('a row over the size limit becomes encodeEvent\'s oversize marker, with the event to log', () => {
    const ctx = context({ maxRecordBytes: 64 * 1024 });
    const after = { id: '5', blob: 'x'.repeat(70 * 1024) };
    const want = expected(ctx, after);
    const got = new ReadEventEncoder(ctx).encode(after);
    assert.ok(want.oversize);
    assert.ok(got.value.equals(want.value));
    assert.equal(JSON.parse(got.value.toString()).op, 'oversize');
    assert.deepEqual(got.oversize?.info, want.oversize);
    assert.equal(got.oversize?.event.after, after);
  });

  it('refuses a run id that could not be part of an event id', () => {
    assert.throws(() => new ReadEventEncoder(context({ run: 'bad run/id' })), RangeError);
  });
});

describe('backfill record arena', () => {
  it('keeps every value intact until recycled, across slabs, multi-byte text included', () => {
    const arena = new RecordArena(64, 1);
    const texts = Array.from({ length: 40 }, (_, i) => `row ${i} ünï ✓ 🚀 ${'x'.repeat(i % 7)}`);
    const views = texts.map((t) => arena.put(t));
    texts.forEach((t, i) => assert.equal(views[i]!.toString(), t));
    // Bigger than a slab: a Buffer of its own.
    assert.equal(arena.put('y'.repeat(100)).toString(), 'y'.repeat(100));
  });
  it('writes over the same memory once recycled (the records were handed over)', () => {
    const arena = new RecordArena(1024);
    const first = arena.put('first record');
    arena.recycle();
    const second = arena.put('second');
    assert.equal(second.buffer, first.buffer);
    assert.equal(second.byteOffset, first.byteOffset);
  });
  it('the encoder writes its values there, with the same bytes', () => {
    const ctx = context();
    const arena = new RecordArena();
    const got = new ReadEventEncoder(ctx, arena).encode(rows[1]!);
    assert.ok(got.value.equals(expected(ctx, rows[1]!).value));
  });
});

describe('backfill event ids across versions', () => {
  it('stay what earlier versions wrote (ids are the sinks\' dedupe key): a pinned id, and sha256 by node:crypto createHash', () => {
    const key = { tenant: 'acme', id: 7 };
    assert.equal(backfillEventId('run1', 'public', 'orders', key), 'r-run1-ZIhiinbyvx9izVWPPvWboq');
    const reference = createHash('sha256').update('public\u0000orders\u0000{"id":7,"tenant":"acme"}').digest('base64url').slice(0, 22);
    assert.equal(backfillEventId('run1', 'public', 'orders', key), `r-run1-${reference}`);
  });
});
