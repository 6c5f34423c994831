import { randomBytes } from 'node:crypto';
import type pg from 'pg';

/** [column, SQL type ('$s.' = the test's schema), SQL literal, expected JSON value]. */
export type Column = readonly [string, string, string, unknown];
export const COLUMNS: readonly Column[] = [
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

/**
 * A table with a column of every type in COLUMNS (plus an enum, domains and a composite
 * in its own schema), `small` to update, and `big`, a 24 kB random text stored out of line
 * so that an update of `small` leaves it as an unchanged TOAST value.
 */
export async function createTypeFixture(client: pg.Client, schema: string): Promise<{ table: string; big: string; insertRow: () => Promise<void>; expectedRow: () => Record<string, unknown> }> {
  const table = `${schema}.t`;
  const big = randomBytes(12_000).toString('hex');
  await client.query(`CREATE SCHEMA ${schema}`);
  // citext is an extension: use it where it is, else install it in the test's schema (dropped with it).
  const ext = await client.query(`SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'citext'`);
  const extSchema = String(ext.rows[0]?.['nspname'] ?? schema);
  if (ext.rows.length === 0) await client.query(`CREATE EXTENSION citext SCHEMA ${schema}`);
  await client.query(`CREATE TYPE ${schema}.mood AS ENUM ('sad', 'ok', 'happy', 'so so')`);
  await client.query(`CREATE DOMAIN ${schema}.price AS numeric(12,2) CHECK (VALUE >= 0)`);
  await client.query(`CREATE DOMAIN ${schema}.tags AS text[]`);
  await client.query(`CREATE TYPE ${schema}.address AS (street text, city text, zip int4)`);
  const sqlType = (type: string): string => type.replaceAll('$s.', `${schema}.`).replace('$citext', `"${extSchema}".citext`);
  const columns = COLUMNS.map(([column, type]) => `${column} ${sqlType(type)}`);
  await client.query(`CREATE TABLE ${table} (id int8 PRIMARY KEY, small int4 NOT NULL, ${columns.join(', ')}, big text)`);
  // EXTERNAL: out of line and uncompressed, so an UPDATE of another column leaves an unchanged TOAST pointer.
  await client.query(`ALTER TABLE ${table} ALTER COLUMN big SET STORAGE EXTERNAL`);
  return {
    table,
    big,
    insertRow: async () => {
      await client.query(
        `INSERT INTO ${table} (id, small, ${COLUMNS.map(([c]) => c).join(', ')}, big) VALUES (1, 1, ${COLUMNS.map(([, , v]) => v).join(', ')}, $1)`,
        [big],
      );
    },
    expectedRow: () => ({ id: '1', small: 1, ...Object.fromEntries(COLUMNS.map(([column, , , value]) => [column, value])), big }),
  };
}
