import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { LogicalReplicationService, type Pgoutput } from 'pg-logical-replication';
import { makePgClient } from '../../src/core/clients/postgres.js';
import {
  builtinTypes,
  decodeQueryRow,
  decodeTuple,
  SESSION_OPTIONS,
  typeInfoFromRow,
  TypeRegistry,
} from '../../src/core/source/pg-types.js';
import { RawTextPgoutputPlugin } from '../../src/core/source/pgoutput-plugin.js';
import { stackConfig, unique } from '../helpers/stack.js';

const RAW_TEXT = { getTypeParser: () => (value: string) => value };

/** [column, SQL type ('$s.' = the test's schema), SQL literal, expected JSON value]. */
type Column = readonly [string, string, string, unknown];
const COLUMNS: readonly Column[] = [
  ['c_bool', 'bool', 'true', true],
  ['c_int2', 'int2', '-32768', -32768],
  ['c_int4', 'int4', '2147483647', 2147483647],
  ['c_int8', 'int8', '9223372036854775807', '9223372036854775807'],
  ['c_int8_min', 'int8', '-9223372036854775808', '-9223372036854775808'],
  ['c_oid', 'oid', '4294967295', 4294967295],
  ['c_numeric', 'numeric', `'-1234567890123456789012345678901234567890.0000000001'`, '-1234567890123456789012345678901234567890.0000000001'],
  ['c_numeric_nan', 'numeric', `'NaN'`, 'NaN'],
  ['c_numeric_inf', 'numeric', `'-Infinity'`, '-Infinity'],
  ['c_float4', 'float4', `'3.4028235e+38'`, 3.4028235e38],
  ['c_float4_inf', 'float4', `'Infinity'`, 'Infinity'],
  ['c_float8', 'float8', '0.1::float8 + 0.2::float8', 0.30000000000000004],
  ['c_float8_tiny', 'float8', `'5e-324'`, 5e-324],
  ['c_float8_nan', 'float8', `'NaN'`, 'NaN'],
  ['c_float8_ninf', 'float8', `'-Infinity'`, '-Infinity'],
  ['c_text', 'text', String.raw`E'multi\nline "q" \\ ü 😀'`, 'multi\nline "q" \\ ü 😀'],
  ['c_varchar', 'varchar(20)', `'short'`, 'short'],
  ['c_bpchar', 'char(5)', `'ab'`, 'ab   '],
  ['c_name', 'name', `'pg_class'`, 'pg_class'],
  ['c_char', '"char"', `'x'`, 'x'],
  ['c_citext', '$citext', `'MiXeD Case'`, 'MiXeD Case'],
  ['c_uuid', 'uuid', `'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'`, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
  ['c_inet', 'inet', `'192.168.100.128/25'`, '192.168.100.128/25'],
  ['c_cidr', 'cidr', `'10.1.0.0/16'`, '10.1.0.0/16'],
  ['c_macaddr', 'macaddr', `'08:00:2B:01:02:03'`, '08:00:2b:01:02:03'],
  ['c_macaddr8', 'macaddr8', `'08:00:2b:01:02:03:04:05'`, '08:00:2b:01:02:03:04:05'],
  // lc_monetary of the local stack's database is C
  ['c_money', 'money', `'1234.56'`, '$1,234.56'],
  ['c_bit', 'bit(4)', `B'1010'`, '1010'],
  ['c_varbit', 'varbit', `B'10101'`, '10101'],
  ['c_xml', 'xml', `'<a x="1">t</a>'`, '<a x="1">t</a>'],
  ['c_tsvector', 'tsvector', `'a fat cat'`, `'a' 'cat' 'fat'`],
  ['c_point', 'point', `'(1.5,-2)'`, '(1.5,-2)'],
  ['c_box', 'box', `'((0,0),(1,1))'`, '(1,1),(0,0)'],
  ['c_polygon', 'polygon', `'((0,0),(1,1),(2,0))'`, '((0,0),(1,1),(2,0))'],
  ['c_circle', 'circle', `'<(1,2),3>'`, '<(1,2),3>'],
  ['c_line', 'line', `'{1,-1,0}'`, '{1,-1,0}'],
  ['c_lseg', 'lseg', `'[(0,0),(1,1)]'`, '[(0,0),(1,1)]'],
  ['c_path', 'path', `'[(0,0),(1,1),(2,0)]'`, '[(0,0),(1,1),(2,0)]'],
  ['c_int4range', 'int4range', `'[1,10)'`, '[1,10)'],
  ['c_tstzrange', 'tstzrange', `'[2020-01-01 00:00+05:30,infinity)'`, '["2019-12-31 18:30:00+00",infinity)'],
  ['c_time', 'time', `'13:14:15.123456'`, '13:14:15.123456'],
  ['c_timetz', 'timetz', `'13:14:15.5+05:30'`, '13:14:15.5+05:30'],
  ['c_interval', 'interval', `'1 year 2 months -3 days 04:05:06.789'`, 'P1Y2M-3DT4H5M6.789S'],
  ['c_json', 'json', `'{"a": 12345678901234567890123, "b": [1, 2.50]}'`, '{"a": 12345678901234567890123, "b": [1, 2.50]}'],
  ['c_jsonb', 'jsonb', `'{"b": [1, 2.50],  "a": 12345678901234567890123}'`, '{"a": 12345678901234567890123, "b": [1, 2.50]}'],
  ['c_bytea', 'bytea', String.raw`'\xdeadbeef00'`, '3q2+7wA='],
  ['c_date', 'date', `'2024-02-29'`, '2024-02-29'],
  ['c_date_bc', 'date', `'0044-03-15 BC'`, '0044-03-15 BC'],
  ['c_date_inf', 'date', `'infinity'`, 'infinity'],
  ['c_ts', 'timestamp', `'2024-02-29 13:14:15.000001'`, '2024-02-29T13:14:15.000001'],
  ['c_ts_bc', 'timestamp', `'0044-03-15 12:00:00 BC'`, '0044-03-15T12:00:00 BC'],
  ['c_tstz', 'timestamptz', `'2024-02-29 23:59:59.999999-08'`, '2024-03-01T07:59:59.999999Z'],
  ['c_tstz_bc', 'timestamptz', `'0001-01-01 00:30:00+01'`, '0001-12-31T23:30:00Z BC'],
  ['c_tstz_inf', 'timestamptz', `'-infinity'`, '-infinity'],
  ['c_enum', '$s.mood', `'so so'`, 'so so'],
  ['c_domain', '$s.price', '12.5', '12.50'],
  ['c_domain_arr', '$s.tags', `'{a,"b c",NULL}'`, ['a', 'b c', null]],
  ['c_enum_arr', '$s.mood[]', `'{happy,NULL,"so so"}'`, ['happy', null, 'so so']],
  ['c_int8_arr', 'int8[]', `'{{9223372036854775807,NULL},{-9223372036854775808,0}}'`, [['9223372036854775807', null], ['-9223372036854775808', '0']]],
  ['c_numeric_arr', 'numeric[]', `'{NaN,Infinity,-Infinity,0.10}'`, ['NaN', 'Infinity', '-Infinity', '0.10']],
  ['c_text_arr', 'text[]', String.raw`'{"a,b","c\"d","e\\f",NULL,"NULL",""," lead","{x}"}'`, ['a,b', 'c"d', 'e\\f', null, 'NULL', '', ' lead', '{x}']],
  ['c_box_arr', 'box[]', `ARRAY[box '((0,0),(1,1))', box '((2,2),(3,3))']`, ['(1,1),(0,0)', '(3,3),(2,2)']],
  ['c_tstz_arr', 'timestamptz[]', `'{"2024-02-29 23:59:59.999999-08",NULL,infinity}'`, ['2024-03-01T07:59:59.999999Z', null, 'infinity']],
  ['c_bytea_arr', 'bytea[]', String.raw`ARRAY['\x00ff'::bytea, NULL]`, ['AP8=', null]],
  ['c_composite', '$s.address', `ROW('1 Main St, "Apt 2"', 'Springfield', 12345)`, '("1 Main St, ""Apt 2""",Springfield,12345)'],
  ['c_null', 'text', 'NULL', null],
];

describe('type fidelity: pgoutput and plain queries give the same JSON', { timeout: 120_000 }, () => {
  const schema = unique('tf');
  const name = unique('tf_slot');
  const table = `${schema}.t`;
  const big = randomBytes(12_000).toString('hex'); // 24 kB, random: stored out of line
  const messages: Pgoutput.Message[] = [];
  let client: pg.Client;
  let registry: TypeRegistry;
  let service: LogicalReplicationService | undefined;
  let slotCreated = false;
  let queryRow: Record<string, unknown> = {};
  let queryNullRow: Record<string, unknown> = {};

  const sqlType = (type: string, citext: string): string => type.replaceAll('$s.', `${schema}.`).replace('$citext', citext);
  const expectedRow = (): Record<string, unknown> => ({
    id: '1',
    small: 1,
    ...Object.fromEntries(COLUMNS.map(([column, , , value]) => [column, value])),
    big,
  });

  before(async () => {
    const pgConfig = stackConfig().postgres;
    client = makePgClient(pgConfig, { options: SESSION_OPTIONS, types: RAW_TEXT });
    await client.connect();
    registry = new TypeRegistry((sql, params) => client.query(sql, params));

    await client.query(`CREATE SCHEMA ${schema}`);
    // citext is an extension: use it where it is, else install it in the test's schema (dropped with it).
    const ext = await client.query(`SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'citext'`);
    const extSchema = String(ext.rows[0]?.['nspname'] ?? schema);
    if (ext.rows.length === 0) await client.query(`CREATE EXTENSION citext SCHEMA ${schema}`);
    await client.query(`CREATE TYPE ${schema}.mood AS ENUM ('sad', 'ok', 'happy', 'so so')`);
    await client.query(`CREATE DOMAIN ${schema}.price AS numeric(12,2) CHECK (VALUE >= 0)`);
    await client.query(`CREATE DOMAIN ${schema}.tags AS text[]`);
    await client.query(`CREATE TYPE ${schema}.address AS (street text, city text, zip int4)`);
    const columns = COLUMNS.map(([column, type]) => `${column} ${sqlType(type, `"${extSchema}".citext`)}`);
    await client.query(`CREATE TABLE ${table} (id int8 PRIMARY KEY, small int4 NOT NULL, ${columns.join(', ')}, big text)`);
    // EXTERNAL: out of line and uncompressed, so the UPDATE below leaves an unchanged TOAST pointer.
    await client.query(`ALTER TABLE ${table} ALTER COLUMN big SET STORAGE EXTERNAL`);
    await client.query(`CREATE PUBLICATION ${name} FOR TABLE ${table}`);
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [name]);
    slotCreated = true;

    await client.query(
      `INSERT INTO ${table} (id, small, ${COLUMNS.map(([c]) => c).join(', ')}, big) VALUES (1, 1, ${COLUMNS.map(([, , v]) => v).join(', ')}, $1)`,
      [big],
    );
    await client.query(`INSERT INTO ${table} (id, small) VALUES (2, 1)`);
    const selected = await client.query(`SELECT * FROM ${table} ORDER BY id`);
    await registry.resolveForFields(selected.fields);
    queryRow = decodeQueryRow(selected.fields, selected.rows[0] as Record<string, unknown>, registry);
    queryNullRow = decodeQueryRow(selected.fields, selected.rows[1] as Record<string, unknown>, registry);
    await client.query(`UPDATE ${table} SET small = small + 1 WHERE id = 1`);
    await client.query(`DELETE FROM ${table} WHERE id = 1`);

    service = new LogicalReplicationService(
      { ...connectionOf(pgConfig), options: SESSION_OPTIONS },
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
    const replication = service;
    const seenDeleteCommit = new Promise<void>((resolve, reject) => {
      let deleted = false;
      replication.on('data', (_lsn: string, msg: Pgoutput.Message) => {
        messages.push(msg);
        if (msg.tag === 'delete') deleted = true;
        if (msg.tag === 'commit' && deleted) resolve();
      });
      replication.on('error', reject);
      setTimeout(() => reject(new Error(`replication stream: no DELETE commit within 30 s (${messages.length} messages)`)), 30_000).unref();
    });
    const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: [name] });
    const streaming = replication.subscribe(plugin, name);
    streaming.catch(() => undefined); // its failures also arrive as 'error' events
    await seenDeleteCommit;
    await replication.stop();
    await streaming;

    const relation = messages.find((m): m is Pgoutput.MessageRelation => m.tag === 'relation');
    assert.ok(relation, 'a relation message');
    await registry.resolveForRelation(relation);
  });

  after(async () => {
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>): Promise<void> => {
      try {
        await step();
      } catch (e) {
        errors.push(e);
      }
    };
    await attempt(async () => service?.destroy());
    if (client) {
      if (slotCreated) await attempt(() => dropSlot(client, name));
      await attempt(() => client.query(`DROP PUBLICATION IF EXISTS ${name}`));
      await attempt(() => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
      await attempt(() => client.end());
    }
    if (errors.length > 0) throw errors[0];
  });

  const changes = <T extends Pgoutput.Message['tag']>(tag: T): Array<Extract<Pgoutput.Message, { tag: T }>> =>
    messages.filter((m): m is Extract<Pgoutput.Message, { tag: T }> => m.tag === tag);

  it('decodes the inserted row to exactly the expected JSON values', () => {
    const [insert] = changes('insert');
    assert.ok(insert);
    const { row, unchanged } = decodeTuple(insert.relation, insert.new, registry);
    assert.deepEqual(unchanged, []);
    assert.deepEqual(row, expectedRow());
  });

  it('a row of NULLs decodes to nulls', () => {
    const inserts = changes('insert');
    assert.equal(inserts.length, 2);
    const second = inserts[1];
    assert.ok(second);
    const expected = Object.fromEntries(Object.keys(expectedRow()).map((column) => [column, null]));
    Object.assign(expected, { id: '2', small: 1 });
    assert.deepEqual(decodeTuple(second.relation, second.new, registry), { row: expected, unchanged: [] });
    assert.equal(JSON.stringify(queryNullRow), JSON.stringify(expected));
  });

  it('the update leaves the unchanged TOASTed column out of the row and lists it in unchanged', () => {
    const [update] = changes('update');
    assert.ok(update);
    assert.ok(Object.hasOwn(update.new, 'big') && update.new['big'] === undefined, 'library: present key, value undefined');
    const { row, unchanged } = decodeTuple(update.relation, update.new, registry);
    assert.deepEqual(unchanged, ['big']);
    const { big: _big, ...rest } = expectedRow();
    assert.deepEqual(row, { ...rest, small: 2 });
  });

  it('the delete carries the key only', () => {
    const [del] = changes('delete');
    assert.ok(del?.key);
    assert.deepEqual(decodeTuple(del.relation, del.key, registry), { row: { id: '1' }, unchanged: [] });
  });

  it('a plain query of the same row gives identical JSON to the CDC insert', () => {
    const [insert] = changes('insert');
    assert.ok(insert);
    const cdc = decodeTuple(insert.relation, insert.new, registry).row;
    assert.equal(JSON.stringify(queryRow), JSON.stringify(cdc));
  });

  it('timestamptz decodes to the same UTC value whatever session time zone printed it', async () => {
    const values = [
      '2024-02-29 23:59:59.999999-08', '2024-03-31 01:30:00.5+00', '2024-10-27 00:59:59.000001+00', '1900-01-01 00:00:00+00',
      '1883-11-18 12:00:00+00', '0001-01-01 00:00:00+00', '0044-03-15 12:00:00.25+00 BC', '9999-12-31 23:59:59.999999+00', 'infinity',
    ];
    const sql = `SELECT ARRAY[${values.map((v) => `'${v}'::timestamptz`).join(', ')}] AS ts`;
    const decodedIn = async (zone: string): Promise<unknown> => {
      await client.query(`SET TimeZone = '${zone}'`);
      const result = await client.query(sql);
      return decodeQueryRow(result.fields, result.rows[0] as Record<string, unknown>, registry)['ts'];
    };
    try {
      const utc = await decodedIn('UTC');
      for (const zone of ['Asia/Kolkata', 'America/St_Johns', 'Asia/Kathmandu', 'Pacific/Kiritimati', 'Europe/Amsterdam', 'America/New_York']) {
        assert.deepEqual(await decodedIn(zone), utc, zone);
      }
      assert.deepEqual((utc as unknown[]).slice(0, 2), ['2024-03-01T07:59:59.999999Z', '2024-03-31T01:30:00.5Z']);
    } finally {
      await client.query('SET TimeZone = UTC');
    }
  });

  it('the static built-in types agree with pg_type', async () => {
    const builtins = builtinTypes();
    const { rows } = await client.query(TypeRegistry.RESOLVE_SQL, [builtins.map((t) => String(t.oid))]);
    const actual = new Map(rows.map((row) => [typeInfoFromRow(row).oid, typeInfoFromRow(row)]));
    for (const expected of builtins) assert.deepEqual(actual.get(expected.oid), expected, `type ${expected.oid} ${expected.name}`);
  });
});

function connectionOf(config: { host: string; port: number; user: string; password: string; database: string }) {
  return { host: config.host, port: config.port, user: config.user, password: config.password, database: config.database };
}

/** Drops the slot once its walsender is gone; a leftover slot would keep WAL forever. */
async function dropSlot(client: pg.Client, slot: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const { rows } = await client.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (rows.length === 0) return;
    if (rows[0]?.['active'] !== 't') {
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return;
    }
    await sleep(100);
  }
  // Still held after 5 s: the holder is this test's own walsender; end it by pid, then drop.
  await client.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active', [slot]);
  await sleep(500);
  await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
}
