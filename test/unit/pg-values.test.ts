import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeQueryRow,
  decodeTuple,
  decodeValue,
  parseArrayLiteral,
  PgValueError,
  TypeRegistry,
  type PgTypeInfo,
} from '../../src/core/source/pg-types.js';

// Built-ins are static; the user-defined types below stand in for what pg_type would return.
const MOOD: PgTypeInfo = { oid: 90001, schema: 'app', name: 'mood', typtype: 'e', category: 'E', elemOid: 0, baseOid: 0, delimiter: ',' };
const MOODS: PgTypeInfo = { oid: 90002, schema: 'app', name: '_mood', typtype: 'b', category: 'A', elemOid: 90001, baseOid: 0, delimiter: ',' };
const MONEYISH: PgTypeInfo = { oid: 90003, schema: 'app', name: 'amount', typtype: 'd', category: 'N', elemOid: 0, baseOid: 1700, delimiter: ',' };
const POSITIVE: PgTypeInfo = { oid: 90004, schema: 'app', name: 'positive_amount', typtype: 'd', category: 'N', elemOid: 0, baseOid: 90003, delimiter: ',' };
const TSS: PgTypeInfo = { oid: 90005, schema: 'app', name: 'stamps', typtype: 'd', category: 'A', elemOid: 0, baseOid: 1185, delimiter: ',' };
const ADDRESS: PgTypeInfo = { oid: 90006, schema: 'app', name: 'address', typtype: 'c', category: 'C', elemOid: 0, baseOid: 0, delimiter: ',' };

const registry = new TypeRegistry();
for (const t of [MOOD, MOODS, MONEYISH, POSITIVE, TSS, ADDRESS]) registry.add(t);

const d = (text: string, oid: number): unknown => decodeValue(text, oid, registry);

const T = {
  bool: 16, bytea: 17, char: 18, name: 19, int8: 20, int2: 21, int4: 23, text: 25, oid: 26, json: 114, xml: 142,
  point: 600, box: 603, cidr: 650, float4: 700, float8: 701, money: 790, macaddr: 829, inet: 869, bpchar: 1042,
  varchar: 1043, date: 1082, time: 1083, timestamp: 1114, timestamptz: 1184, interval: 1186, timetz: 1266,
  bit: 1560, varbit: 1562, numeric: 1700, uuid: 2950, tsvector: 3614, jsonb: 3802, int4range: 3904,
  tstzrange: 3910, int4multirange: 4451,
  _bool: 1000, _bytea: 1001, _int8: 1016, _int4: 1007, _text: 1009, _float8: 1022, _box: 1020, _numeric: 1231,
  _timestamptz: 1185, _date: 1182, _jsonb: 3807, _int4range: 3905,
} as const;

describe('decodeValue: scalars', () => {
  it('bool', () => {
    assert.equal(d('t', T.bool), true);
    assert.equal(d('f', T.bool), false);
    assert.throws(() => d('true', T.bool), PgValueError);
  });

  it('int2, int4 and oid are numbers', () => {
    assert.equal(d('-32768', T.int2), -32768);
    assert.equal(d('2147483647', T.int4), 2147483647);
    assert.equal(d('-2147483648', T.int4), -2147483648);
    assert.equal(d('4294967295', T.oid), 4294967295);
    assert.throws(() => d('1.5', T.int4), PgValueError);
  });

  it('int8 is a string with every digit', () => {
    assert.equal(d('9223372036854775807', T.int8), '9223372036854775807');
    assert.equal(d('-9223372036854775808', T.int8), '-9223372036854775808');
    assert.equal(d('0', T.int8), '0');
  });

  it('numeric is the printed string, including 40 digits and the special values', () => {
    assert.equal(d('1234567890123456789012345678901234567890', T.numeric), '1234567890123456789012345678901234567890');
    assert.equal(d('-0.0000000000000000000000000000000000000001', T.numeric), '-0.0000000000000000000000000000000000000001');
    assert.equal(d('12.500', T.numeric), '12.500');
    for (const special of ['NaN', 'Infinity', '-Infinity']) assert.equal(d(special, T.numeric), special);
  });

  it('float4 and float8 are numbers; NaN and the infinities are strings', () => {
    assert.equal(d('0.1', T.float8), 0.1);
    assert.equal(d('1.7976931348623157e+308', T.float8), Number.MAX_VALUE);
    assert.equal(d('5e-324', T.float8), Number.MIN_VALUE);
    assert.equal(d('-1.5e-300', T.float8), -1.5e-300);
    assert.equal(d('0.30000000000000004', T.float8), 0.30000000000000004);
    assert.equal(d('3.4028235e+38', T.float4), 3.4028235e38);
    assert.equal(d('0.1', T.float4), 0.1);
    assert.ok(Object.is(d('-0', T.float8), -0));
    for (const oid of [T.float4, T.float8]) {
      assert.equal(d('NaN', oid), 'NaN');
      assert.equal(d('Infinity', oid), 'Infinity');
      assert.equal(d('-Infinity', oid), '-Infinity');
      assert.throws(() => d('', oid), PgValueError);
      assert.throws(() => d('abc', oid), PgValueError);
    }
  });

  it('json and jsonb stay JSON text, so a 20-digit number keeps its digits', () => {
    const big = '{"id": 12345678901234567890, "f": 0.1000000000000000055511151231257827}';
    assert.equal(d(big, T.jsonb), big);
    assert.equal(d('[1, 2]', T.json), '[1, 2]');
    assert.equal(d('null', T.jsonb), 'null');
  });

  it('bytea hex becomes base64', () => {
    assert.equal(d('\\x', T.bytea), '');
    assert.equal(d('\\xdeadbeef00ff', T.bytea), Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]).toString('base64'));
    assert.equal(d('\\xDEADBEEF', T.bytea), '3q2+7w==');
    // escape format (bytea_output=escape) and broken hex are refused, never half-decoded
    assert.throws(() => d('abc\\000', T.bytea), PgValueError);
    assert.throws(() => d('\\xabc', T.bytea), PgValueError);
    assert.throws(() => d('\\xzz', T.bytea), PgValueError);
  });

  it('string-typed values are exactly as printed', () => {
    const cases: Array<[string, number]> = [
      ['hello, "world" \\ ü', T.text], ['x', T.varchar], ['ab   ', T.bpchar], ['pg_class', T.name], ['a', T.char],
      ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', T.uuid], ['192.168.0.1/24', T.inet], ['10.0.0.0/8', T.cidr],
      ['08:00:2b:01:02:03', T.macaddr], ['$1,234.56', T.money], ['1010', T.bit], ['10101', T.varbit],
      ['<a>1</a>', T.xml], ["'a':1 'b':2", T.tsvector], ['(1,2)', T.point], ['(1,1),(0,0)', T.box],
      ['[1,10)', T.int4range], ['["2020-01-01 00:00:00+00","2021-01-01 00:00:00+00")', T.tstzrange],
      ['{[1,3), [5,7)}', T.int4multirange], ['13:14:15.123456', T.time], ['13:14:15.5+05:30', T.timetz],
      ['P1Y2M-3DT4H5M6.789S', T.interval], ['("1 Main St",Springfield)', ADDRESS.oid], ['happy', MOOD.oid],
    ];
    for (const [text, oid] of cases) assert.equal(d(text, oid), text, `type ${oid}`);
  });

  it('domains decode as their base type, through a chain of domains', () => {
    assert.equal(d('12.50', MONEYISH.oid), '12.50');
    assert.equal(d('12.50', POSITIVE.oid), '12.50');
    assert.deepEqual(d('{"2020-01-01 00:00:00+00"}', TSS.oid), ['2020-01-01T00:00:00Z']);
  });

  it('an unresolved OID is an error, not a guess', () => {
    assert.throws(() => d('x', 123456), /not resolved/);
  });
});

describe('decodeValue: dates and times', () => {
  it('date', () => {
    assert.equal(d('2024-02-29', T.date), '2024-02-29');
    assert.equal(d('0044-03-15 BC', T.date), '0044-03-15 BC');
    assert.equal(d('infinity', T.date), 'infinity');
    assert.equal(d('-infinity', T.date), '-infinity');
    assert.equal(d('10000-01-01', T.date), '10000-01-01');
    assert.throws(() => d('01/02/2024', T.date), /DateStyle/);
  });

  it('timestamp puts a T between date and time, keeps the fraction and BC', () => {
    assert.equal(d('2024-02-29 13:14:15', T.timestamp), '2024-02-29T13:14:15');
    assert.equal(d('2024-02-29 13:14:15.000001', T.timestamp), '2024-02-29T13:14:15.000001');
    assert.equal(d('2024-02-29 13:14:15.5', T.timestamp), '2024-02-29T13:14:15.5');
    assert.equal(d('0044-03-15 12:00:00 BC', T.timestamp), '0044-03-15T12:00:00 BC');
    assert.equal(d('infinity', T.timestamp), 'infinity');
    assert.equal(d('-infinity', T.timestamp), '-infinity');
    assert.throws(() => d('Thu Feb 29 13:14:15 2024', T.timestamp), /DateStyle/);
  });

  it('timestamptz is UTC with every fraction digit and a Z', () => {
    assert.equal(d('2024-02-29 13:14:15.123456+00', T.timestamptz), '2024-02-29T13:14:15.123456Z');
    assert.equal(d('2024-02-29 13:14:15+00', T.timestamptz), '2024-02-29T13:14:15Z');
    assert.equal(d('2024-02-29 13:14:15.12+00', T.timestamptz), '2024-02-29T13:14:15.12Z');
    assert.equal(d('infinity', T.timestamptz), 'infinity');
    assert.equal(d('-infinity', T.timestamptz), '-infinity');
    assert.equal(d('294276-12-31 23:59:59.999999+00', T.timestamptz), '294276-12-31T23:59:59.999999Z');
  });

  it('timestamptz converts any offset to UTC exactly, across days, months, years and leap days', () => {
    assert.equal(d('2024-01-01 05:29:59.999999+05:30', T.timestamptz), '2023-12-31T23:59:59.999999Z');
    assert.equal(d('2024-02-28 20:00:00.000001-08', T.timestamptz), '2024-02-29T04:00:00.000001Z');
    assert.equal(d('2023-02-28 20:00:00-08', T.timestamptz), '2023-03-01T04:00:00Z');
    assert.equal(d('2024-06-30 23:15:00.654321-03:30', T.timestamptz), '2024-07-01T02:45:00.654321Z');
    assert.equal(d('2024-01-01 00:00:00+14', T.timestamptz), '2023-12-31T10:00:00Z');
    assert.equal(d('2000-02-29 00:00:00+05:45', T.timestamptz), '2000-02-28T18:15:00Z');
    assert.equal(d('1900-03-01 00:00:00+01', T.timestamptz), '1900-02-28T23:00:00Z'); // 1900 is not a leap year
    // local mean time before time zones prints offsets with seconds
    assert.equal(d('1900-01-01 05:21:10+05:21:10', T.timestamptz), '1900-01-01T00:00:00Z');
    assert.equal(d('1883-11-18 11:59:59.5-04:56:02', T.timestamptz), '1883-11-18T16:56:01.5Z');
    assert.equal(d('10000-01-01 00:00:00+14', T.timestamptz), '9999-12-31T10:00:00Z');
  });

  it('timestamptz before Christ, and across the BC/AD boundary (there is no year 0)', () => {
    assert.equal(d('0044-03-15 12:00:00.5+00 BC', T.timestamptz), '0044-03-15T12:00:00.5Z BC');
    assert.equal(d('0044-03-15 17:53:28+05:53:28 BC', T.timestamptz), '0044-03-15T12:00:00Z BC');
    assert.equal(d('0001-01-01 00:30:00+01', T.timestamptz), '0001-12-31T23:30:00Z BC');
    assert.equal(d('0001-12-31 23:30:00-01 BC', T.timestamptz), '0001-01-01T00:30:00Z');
    assert.equal(d('0005-03-01 00:00:00+01 BC', T.timestamptz), '0005-02-29T23:00:00Z BC'); // 5 BC is a leap year
    assert.equal(d('4713-01-01 00:00:00+00 BC', T.timestamptz), '4713-01-01T00:00:00Z BC');
  });

  it('timestamptz in another DateStyle is refused', () => {
    assert.throws(() => d('Thu Feb 29 13:14:15 2024 UTC', T.timestamptz), /DateStyle/);
    assert.throws(() => d('2024-02-29T13:14:15Z', T.timestamptz), PgValueError);
  });
});

describe('decodeValue: arrays', () => {
  it('decodes elements by the element type, NULLs stay null', () => {
    assert.deepEqual(d('{}', T._int4), []);
    assert.deepEqual(d('{1,NULL,-3}', T._int4), [1, null, -3]);
    assert.deepEqual(d('{9223372036854775807,NULL,-9223372036854775808}', T._int8), ['9223372036854775807', null, '-9223372036854775808']);
    assert.deepEqual(d('{t,f,NULL}', T._bool), [true, false, null]);
    assert.deepEqual(d('{NaN,Infinity,-Infinity,1.5}', T._float8), ['NaN', 'Infinity', '-Infinity', 1.5]);
    assert.deepEqual(d('{1234567890123456789012345678901234567890,NaN}', T._numeric), ['1234567890123456789012345678901234567890', 'NaN']);
    assert.deepEqual(d('{2024-02-29,"0044-03-15 BC",infinity}', T._date), ['2024-02-29', '0044-03-15 BC', 'infinity']);
  });

  it('quoted elements: commas, quotes, backslashes, braces, spaces, empty and the word NULL', () => {
    const text = '{"a,b","c\\"d","e\\\\f","{x}"," lead","",NULL,"NULL",plain,"\\\\"}';
    assert.deepEqual(d(text, T._text), ['a,b', 'c"d', 'e\\f', '{x}', ' lead', '', null, 'NULL', 'plain', '\\']);
  });

  it('multi-dimensional, with NULLs', () => {
    assert.deepEqual(d('{{1,2},{3,NULL}}', T._int8), [['1', '2'], ['3', null]]);
    assert.deepEqual(d('{{{t}},{{NULL}}}', T._bool), [[[true]], [[null]]]);
  });

  it('explicit lower bounds are dropped', () => {
    assert.deepEqual(d('[0:1]={1,2}', T._int4), [1, 2]);
    assert.deepEqual(d('[0:1][1:1]={{1},{2}}', T._int4), [[1], [2]]);
  });

  it('elements of every kind decode like scalars', () => {
    assert.deepEqual(d('{"2024-01-01 05:29:59.999999+05:30",NULL,infinity}', T._timestamptz), ['2023-12-31T23:59:59.999999Z', null, 'infinity']);
    assert.deepEqual(d('{"\\\\xdeadbeef",NULL}', T._bytea), ['3q2+7w==', null]);
    assert.deepEqual(d('{"{\\"n\\": 12345678901234567890}"}', T._jsonb), ['{"n": 12345678901234567890}']);
    assert.deepEqual(d('{"[1,3)",empty}', T._int4range), ['[1,3)', 'empty']);
    assert.deepEqual(d('{happy,NULL,"so so"}', MOODS.oid), ['happy', null, 'so so']);
  });

  it("box arrays use ';' between elements (postgres-array knows only ',')", () => {
    assert.deepEqual(d('{(1,1),(0,0);(3,3),(2,2)}', T._box), ['(1,1),(0,0)', '(3,3),(2,2)']);
    assert.deepEqual(d('{(1,1),(0,0);NULL}', T._box), ['(1,1),(0,0)', null]);
  });

  it('the general array parser agrees with postgres-array on comma arrays', () => {
    const id = (s: string): string => s;
    for (const text of ['{}', '{1,NULL,"NULL",""}', '{{"a,b","c\\"d"},{"e\\\\f",NULL}}', '[2:3]={x,y}', '{"\\\\"}']) {
      assert.deepEqual(parseArrayLiteral(text, ',', id), d(text, T._text), text);
    }
    assert.throws(() => parseArrayLiteral('{1,2', ',', id), PgValueError);
    assert.throws(() => parseArrayLiteral('{"1}', ',', id), PgValueError);
    assert.throws(() => parseArrayLiteral('{1}}', ',', id), PgValueError);
  });
});

describe('decodeTuple and decodeQueryRow', () => {
  const relation = {
    columns: [
      { name: 'id', typeOid: T.int8 },
      { name: 'at', typeOid: T.timestamptz },
      { name: 'note', typeOid: T.text },
      { name: 'body', typeOid: T.text },
    ],
  };

  it('a present undefined is an unchanged TOAST value; null stays null', () => {
    const tuple = Object.assign(Object.create(null) as Record<string, unknown>, {
      id: '9223372036854775807',
      at: '2024-01-01 00:00:00.000001+00',
      note: null,
      body: undefined,
    });
    assert.deepEqual(decodeTuple(relation, tuple, registry), {
      row: { id: '9223372036854775807', at: '2024-01-01T00:00:00.000001Z', note: null },
      unchanged: ['body'],
    });
  });

  it('a key-only tuple decodes just its key columns', () => {
    const key = Object.assign(Object.create(null) as Record<string, unknown>, { id: '7' });
    assert.deepEqual(decodeTuple(relation, key, registry), { row: { id: '7' }, unchanged: [] });
  });

  it('keeps a column named __proto__ as a member of the row (assigned, it set the prototype and the column vanished)', () => {
    const odd = { columns: [{ name: 'id', typeOid: T.int8 }, { name: '__proto__', typeOid: T.text }] };
    const { row } = decodeTuple(odd, ['1', 'x'], registry);
    assert.equal(JSON.stringify(row), '{"id":"1","__proto__":"x"}');
    assert.equal(Object.getPrototypeOf(row), Object.prototype);
    assert.equal(JSON.stringify(decodeTuple(odd, ['1', undefined], registry)), '{"row":{"id":"1"},"unchanged":["__proto__"]}');
    const fields = [{ name: 'id', dataTypeID: T.int8 }, { name: '__proto__', dataTypeID: T.text }];
    assert.equal(JSON.stringify(decodeQueryRow(fields, ['2', 'y'], registry)), '{"id":"2","__proto__":"y"}');
  });

  it('refuses values a type parser already converted', () => {
    const tuple = { id: '1', at: new Date(0), note: null, body: 'x' };
    assert.throws(() => decodeTuple(relation, tuple, registry), /raw text/);
    const fields = relation.columns.map((c) => ({ name: c.name, dataTypeID: c.typeOid }));
    assert.throws(() => decodeQueryRow(fields, ['1', new Date(0), null, 'x'], registry), /column at is not raw text/);
    assert.throws(() => decodeQueryRow(fields, ['1'], registry), /column at is not raw text/);
  });

  it('a field list decoded before a type is added decodes by the added type after', () => {
    const reg = new TypeRegistry();
    reg.add({ ...MOOD, oid: 90100, name: 'flag', typtype: 'd', baseOid: T.text });
    const fields = [{ name: 'f', dataTypeID: 90100 }];
    assert.deepEqual(decodeQueryRow(fields, ['t'], reg), { f: 't' });
    reg.add({ ...MOOD, oid: 90100, name: 'flag', typtype: 'd', baseOid: T.bool });
    assert.deepEqual(decodeQueryRow(fields, ['t'], reg), { f: true });
  });

  it('query rows, object and array mode, give the same JSON as the tuple', () => {
    const fields = relation.columns.map((c) => ({ name: c.name, dataTypeID: c.typeOid }));
    const values = ['1', '2024-01-01 05:30:00+05:30', null, 'b'];
    const expected = { id: '1', at: '2024-01-01T00:00:00Z', note: null, body: 'b' };
    assert.deepEqual(decodeQueryRow(fields, values, registry), expected);
    assert.deepEqual(decodeQueryRow(fields, { id: '1', at: '2024-01-01 05:30:00+05:30', note: null, body: 'b' }, registry), expected);
    const tuple = Object.assign(Object.create(null) as Record<string, unknown>, { id: '1', at: '2024-01-01 00:00:00+00', note: null, body: 'b' });
    assert.deepEqual(decodeTuple(relation, tuple, registry).row, expected);
  });
});

describe('TypeRegistry', () => {
  it('knows built-ins without a query, and asks only for what it does not know', async () => {
    const asked: unknown[][] = [];
    const reg = new TypeRegistry(async (_sql, params) => {
      asked.push(params);
      return {
        rows: [
          { oid: '91000', schema: 'app', name: 'price', typtype: 'd', category: 'N', elem_oid: '0', base_oid: '1700', delimiter: ',' },
        ],
      };
    });
    await reg.resolve([T.int4, T._timestamptz, T.jsonb]);
    assert.equal(asked.length, 0);
    await reg.resolveForRelation({ columns: [{ typeOid: T.int8 }, { typeOid: 91000 }] });
    assert.deepEqual(asked, [[['91000']]]);
    await reg.resolveForFields([{ dataTypeID: 91000 }]);
    assert.equal(asked.length, 1, 'cached');
    assert.equal(decodeValue('1.10', 91000, reg), '1.10');
    assert.equal(reg.concrete(91000).name, 'numeric');
  });

  it('fails when pg_type does not have an OID, and without a query function', async () => {
    await assert.rejects(new TypeRegistry(async () => ({ rows: [] })).resolve([95000]), /not in pg_type/);
    await assert.rejects(new TypeRegistry().resolve([95000]), /no query function/);
  });
});
