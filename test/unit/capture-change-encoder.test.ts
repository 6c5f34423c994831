import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { beginTransaction, eventsOf, type SourceInfo } from '../../src/core/capture/assembler.js';
import { ChangeEncoder } from '../../src/core/capture/change-encoder.js';
import type { ChangeEvent } from '../../src/core/event/envelope.js';
import { encodeEventText } from '../../src/core/event/oversize.js';
import { RawTextPgoutputPlugin } from '../../src/core/source/pgoutput-plugin.js';
import { TypeRegistry } from '../../src/core/source/pg-types.js';
import { TABLE_IDENTITY_SQL } from '../../src/core/source/row-identity.js';

/** pgoutput v1 messages, as PostgreSQL sends them (protocol-logicalrep-message-formats). */
const u8 = (n: number) => Buffer.from([n]);
const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };
const i64 = (n: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(n); return b; };
const cstr = (s: string) => Buffer.concat([Buffer.from(s), u8(0)]);
const ch = (c: string) => u8(c.charCodeAt(0));

type Value = string | null | 'UNCHANGED';
const UNCHANGED = 'UNCHANGED' as const;
function tuple(values: Value[]): Buffer {
  const parts = [i16(values.length)];
  for (const v of values) {
    if (v === null) parts.push(ch('n'));
    else if (v === UNCHANGED) parts.push(ch('u'));
    else { const b = Buffer.from(v); parts.push(ch('t'), i32(b.length), b); }
  }
  return Buffer.concat(parts);
}
const relationMsg = (oid: number, schema: string, name: string, ident: string, columns: Array<[string, number, boolean]>) =>
  Buffer.concat([ch('R'), i32(oid), cstr(schema), cstr(name), ch(ident), i16(columns.length),
    ...columns.map(([col, type, key]) => Buffer.concat([u8(key ? 1 : 0), cstr(col), i32(type), i32(0xffffffff)]))]);
const begin = (lsn: bigint, xid: number) => Buffer.concat([ch('B'), i64(lsn), i64(1_700_000_000_123_456n), i32(xid)]);
const insert = (oid: number, values: Value[]) => Buffer.concat([ch('I'), i32(oid), ch('N'), tuple(values)]);
const update = (oid: number, values: Value[], old?: { kind: 'K' | 'O'; values: Value[] }) =>
  Buffer.concat([ch('U'), i32(oid), ...(old ? [ch(old.kind), tuple(old.values)] : []), ch('N'), tuple(values)]);
const del = (oid: number, kind: 'K' | 'O', values: Value[]) => Buffer.concat([ch('D'), i32(oid), ch(kind), tuple(values)]);

// Two tables: a composite key with odd names (unicode, a quote, a control character) under
// DEFAULT, and one under REPLICA IDENTITY FULL (whole before images, OID above 2^31).
const ODD = 0x4001;
const FULL = 0x80000010;
const oddColumns: Array<[string, number, boolean]> = [['tenant "ü"', 25, true], ['id\u0001', 23, true], ['doc', 25, false], ['n', 701, false], ['tags', 1009, false]];
const fullColumns: Array<[string, number, boolean]> = [['id', 20, false], ['body', 25, false], ['__proto__', 25, false]];
const relations = [relationMsg(ODD, 'app ✓', 'orders\n"x"', 'd', oddColumns), relationMsg(FULL, 'public', 'full_t', 'f', fullColumns)];
const rows: Buffer[] = [
  insert(ODD, ['acme', '1', 'plain', '1.5', '{a,"b\\"c",NULL}']),
  insert(ODD, ['ünï 🚀', '2', '\u0000\t\n\u2028 control "quoted" \\', '-0', '{}']),
  insert(ODD, ['\ufeffbom', '3', null, 'NaN', null]),
  update(ODD, ['acme', '1', 'changed', '2', UNCHANGED]), // TOAST unchanged under DEFAULT
  update(ODD, ['acme', '9', 'moved', '2', '{x}'], { kind: 'K', values: ['acme', '1', null, null, null] }), // key change
  del(ODD, 'K', ['acme', '9', null, null, null]),
  insert(FULL, ['10', 'x'.repeat(300), 'proto']),
  update(FULL, ['10', UNCHANGED, 'p2'], { kind: 'O', values: ['10', 'y'.repeat(300), 'proto'] }), // FULL: unchanged filled from old
  update(FULL, ['11', 'z', 'p3'], { kind: 'O', values: ['10', 'z', 'p2'] }), // FULL key change
  del(FULL, 'O', ['11', 'z'.repeat(2000), 'p3']), // over the small limit below: trimmed before image
  insert(FULL, ['12', 'w'.repeat(3000), 'big']), // over the limit: an oversize marker
];

function libraryParse(plugin: PgoutputPlugin, buffer: Buffer): Pgoutput.Message {
  const msg = plugin.parse(buffer);
  if (msg.tag === 'relation') for (const c of msg.columns) c.parser = (text: string) => text;
  return msg;
}

async function events(source: SourceInfo, txs: Array<{ lsn: bigint; xid: number }>): Promise<ChangeEvent[]> {
  const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  // The one catalog lookup a FULL table needs (its key columns), answered as PostgreSQL would.
  const registry = new TypeRegistry(async (sql) => ({ rows: sql === TABLE_IDENTITY_SQL ? [{ replident: 'f', columns: '["id"]' }] : [] }));
  const out: ChangeEvent[] = [];
  for (const r of relations) await registry.resolveForRelation(plugin.parse(r) as Pgoutput.MessageRelation);
  for (const { lsn, xid } of txs) {
    const tx = beginTransaction(plugin.parse(begin(lsn, xid)) as Pgoutput.MessageBegin);
    for (const row of rows) out.push(...eventsOf(plugin.parse(row), tx, registry, source));
  }
  return out;
}

describe('capture change encoder', () => {
  it('reads row messages into the same messages as the library (text, NULL, unchanged TOAST, K and O images)', () => {
    const ours = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    const library = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    for (const r of relations) { ours.parse(r); libraryParse(library, r); }
    // Ours: full tuples as arrays in column order (TupleValues); the library's: dictionaries by name.
    const named = (relation: Pgoutput.MessageRelation, tuple: unknown) => {
      if (!Array.isArray(tuple)) return tuple === null || tuple === undefined ? tuple : { ...(tuple as object) };
      return Object.fromEntries(tuple.map((v, i) => [relation.columns[i]!.name, v]));
    };
    // The library's TextDecoder drops a leading byte-order mark (see pgoutput-plugin.ts); ours keeps it.
    const unBom = (t: unknown) => (t && typeof t === 'object' ? Object.fromEntries(Object.entries(t).map(([k, v]) => [k, typeof v === 'string' ? v.replace(/^\ufeff/, '') : v])) : t);
    for (const row of rows) {
      const a = ours.parse(row) as Pgoutput.MessageUpdate;
      const b = libraryParse(library, row) as Pgoutput.MessageUpdate;
      assert.equal(a.tag, b.tag);
      assert.equal(a.relation, (ours as unknown as { relations: Map<number, unknown> }).relations.get(a.relation.relationOid));
      assert.equal(a.relation.name, b.relation.name);
      for (const side of ['new', 'old', 'key'] as const) {
        const x = unBom(named(a.relation, a[side]));
        const y = unBom(named(b.relation, b[side] === undefined ? undefined : b[side]));
        assert.deepEqual(x, y, `${a.tag} ${side}`);
        if (x) assert.deepEqual(Object.keys(x), Object.keys(y as object), 'the same members, unchanged ones included');
      }
    }
    assert.equal((ours.parse(rows[2]!) as unknown as { new: string[] }).new[0], '\ufeffbom');
  });

  it('gives the record keys and event JSON of encodeEventText, byte for byte, across transactions and limits', async () => {
    const source: SourceInfo = { pipeline: 'shop "p"', db: 'app\u0002', slot: 'streamctl_shop' };
    const list = await events(source, [{ lsn: 0x16b3748n, xid: 700 }, { lsn: 0x1_0000_0000n, xid: 0xfffffff0 }]);
    assert.ok(list.some((e) => e.unchanged) && list.some((e) => e.moved_to) && list.some((e) => e.moved_from));
    for (const maxBytes of [1024 * 1024, 1500]) {
      const encoder = new ChangeEncoder(maxBytes);
      for (const event of list) {
        const expected = encodeEventText(event, maxBytes);
        const got = encoder.encode(event);
        assert.deepEqual({ key: got.key, value: got.value, bytes: got.bytes, oversize: got.oversize }, expected, `${event.op} ${event.id}`);
        assert.equal(got.label, `${event.schema}.${event.table}|${event.op}`);
      }
      const plain = list.filter((e) => !e.unchanged && !e.moved_to && !e.moved_from && Buffer.byteLength(JSON.stringify(e)) <= maxBytes);
      assert.equal(encoder.templated, plain.length, 'every event without extra fields and within the limit went through a template');
      if (maxBytes === 1500) assert.ok(list.some((e) => encodeEventText(e, maxBytes).oversize), 'an oversize marker was among them');
    }
  });

  it('prints a template again for another source block', () => {
    const encoder = new ChangeEncoder(1 << 20);
    const base: ChangeEvent = { id: 'c-1', version: 1, op: 'insert', schema: 's', table: 't', key: { id: 1 }, before: null, after: { id: 1 }, lsn: '0/1', position: 0, xid: 1, commit_ts: 'T', source: { pipeline: 'a', db: 'd', kind: 'cdc', slot: 's' } };
    const other: ChangeEvent = { ...base, source: { pipeline: 'b', db: 'd', kind: 'cdc', slot: 's' } };
    for (const e of [base, other, base]) assert.equal(encoder.encode(e).value, JSON.stringify(e));
  });
});
