/**
 * Type fidelity: PostgreSQL text values to JSON values, one implementation shared by the
 * CDC path (pgoutput tuples, see pgoutput-plugin.ts) and the backfill path (plain queries
 * with raw-text type parsers), so the same row gives the same JSON both ways.
 *
 * Both paths receive exactly what the type's output function printed, and that text
 * depends on session settings. Every streamctl connection therefore uses SESSION_OPTIONS,
 * and the decoder rejects text that is not in the canonical form rather than guessing.
 *
 * The contract (type after following domains to their base type):
 *
 * | PostgreSQL type                                  | JSON value                                                  |
 * |--------------------------------------------------|-------------------------------------------------------------|
 * | bool                                             | boolean                                                     |
 * | int2, int4, oid                                  | number                                                      |
 * | int8                                             | string of digits (a JS number would lose digits past 2^53)  |
 * | numeric                                          | string exactly as printed, incl. 'NaN', 'Infinity', '-Infinity' |
 * | float4, float8                                   | number (shortest round-trip digits); NaN/±Infinity -> 'NaN', 'Infinity', '-Infinity' (JSON has none); -0 -> -0 (serialises as 0) |
 * | json, jsonb                                      | string: the JSON text unparsed, so big numbers keep their digits (as Debezium does) |
 * | bytea                                            | base64 string (PostgreSQL prints hex '\x..')                |
 * | date                                             | 'YYYY-MM-DD'; 'YYYY-MM-DD BC', 'infinity', '-infinity' as printed |
 * | timestamp                                        | 'YYYY-MM-DDTHH:MM:SS[.ffffff]' (+ ' BC'); 'infinity', '-infinity' |
 * | timestamptz                                      | UTC 'YYYY-MM-DDTHH:MM:SS[.ffffff]Z' (+ ' BC'), any printed offset converted exactly; fraction digits kept as printed; 'infinity', '-infinity' |
 * | arrays of any type (typoutput = array_out)       | JS arrays (nested for multi-dimensional), NULL elements -> null, elements decoded by these rules; explicit lower bounds ('[0:1]=') are dropped |
 * | domain                                           | decoded as its base type                                    |
 * | enum, composite, range, multirange               | string as printed                                           |
 * | text, varchar, bpchar, name, "char", citext, uuid, inet, cidr, macaddr(8), money, bit, varbit, xml, tsvector, tsquery, geometric types, time, timetz, interval, pg_lsn, any other type | string as printed |
 *
 * NULL is null on both paths; unchanged TOASTed values of a pgoutput tuple are not in the
 * row and are listed in `unchanged` instead (see decodeTuple).
 */
import { parse as parsePgArray } from 'postgres-array';
import { setOwn } from '../event/own-member.js';
import { RowIdentities, type RelationLike } from './row-identity.js';

/**
 * libpq `options` for every streamctl PostgreSQL connection, replication and normal: the
 * walsender runs the output functions with these settings, so both paths print alike.
 * - TimeZone=UTC: timestamptz prints as '+00', so no conversion is normally needed.
 * - DateStyle=ISO,YMD: 'YYYY-MM-DD HH:MM:SS' instead of e.g. 'Tue Jan 02 ...' (Postgres/SQL styles).
 * - IntervalStyle=iso_8601: 'P1Y2M-3DT4H5M6.789S' is a standard (ISO 8601 durations, what
 *   Debezium emits in its string mode) that sinks and libraries can parse, unlike the
 *   PostgreSQL-only '1 year 2 mons -3 days 04:05:06.789'; it is exact and unambiguous.
 * - extra_float_digits=3: shortest round-trip digits on PostgreSQL 12+ (any value > 0),
 *   17 significant digits on older servers; never a rounded value.
 * - bytea_output=hex: a database may default to 'escape'; the decoder expects hex.
 * lc_monetary is deliberately left alone: money's stored integer is in minor units of the
 * database's own locale, so printing it under another locale would change its value.
 */
export const SESSION_OPTIONS =
  '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601 -c extra_float_digits=3 -c bytea_output=hex';

/** What decoding needs to know about a type. Every field is fixed for the life of an OID. */
export interface PgTypeInfo {
  oid: number;
  schema: string;
  name: string;
  /** pg_type.typtype: b base, c composite, d domain, e enum, p pseudo, r range, m multirange. */
  typtype: string;
  /** pg_type.typcategory. */
  category: string;
  /**
   * Element type of a true array, i.e. one printed by array_out; 0 otherwise. Differs from
   * pg_type.typelem for name, point, int2vector etc., which set typelem but print no '{..}'.
   */
  elemOid: number;
  /** pg_type.typbasetype: the type a domain is over (possibly another domain); 0 otherwise. */
  baseOid: number;
  /** pg_type.typdelim: the separator array_out uses between elements of this type. */
  delimiter: string;
}

export type QueryFn = (sql: string, params: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>;

export class PgValueError extends Error {
  override name = 'PgValueError';
}

// --- built-in types -----------------------------------------------------------------------

/** [oid, name, category, array oid, typtype, delimiter]; checked against pg_type by the integration test. */
type BuiltinRow = readonly [number, string, string, number, ('b' | 'r' | 'm')?, string?];
const BUILTIN_ROWS: readonly BuiltinRow[] = [
  [16, 'bool', 'B', 1000], [17, 'bytea', 'U', 1001], [18, 'char', 'Z', 1002], [19, 'name', 'S', 1003],
  [20, 'int8', 'N', 1016], [21, 'int2', 'N', 1005], [23, 'int4', 'N', 1007], [25, 'text', 'S', 1009],
  [26, 'oid', 'N', 1028], [28, 'xid', 'U', 1011], [114, 'json', 'U', 199], [142, 'xml', 'U', 143],
  [600, 'point', 'G', 1017], [601, 'lseg', 'G', 1018], [602, 'path', 'G', 1019], [603, 'box', 'G', 1020, 'b', ';'],
  [604, 'polygon', 'G', 1027], [628, 'line', 'G', 629], [650, 'cidr', 'I', 651], [700, 'float4', 'N', 1021],
  [701, 'float8', 'N', 1022], [718, 'circle', 'G', 719], [774, 'macaddr8', 'U', 775], [790, 'money', 'N', 791],
  [829, 'macaddr', 'U', 1040], [869, 'inet', 'I', 1041], [1042, 'bpchar', 'S', 1014], [1043, 'varchar', 'S', 1015],
  [1082, 'date', 'D', 1182], [1083, 'time', 'D', 1183], [1114, 'timestamp', 'D', 1115],
  [1184, 'timestamptz', 'D', 1185], [1186, 'interval', 'T', 1187], [1266, 'timetz', 'D', 1270],
  [1560, 'bit', 'V', 1561], [1562, 'varbit', 'V', 1563], [1700, 'numeric', 'N', 1231], [2950, 'uuid', 'U', 2951],
  [3220, 'pg_lsn', 'U', 3221], [3614, 'tsvector', 'U', 3643], [3615, 'tsquery', 'U', 3645],
  [3802, 'jsonb', 'U', 3807], [4072, 'jsonpath', 'U', 4073], [5069, 'xid8', 'U', 271],
  [3904, 'int4range', 'R', 3905, 'r'], [3906, 'numrange', 'R', 3907, 'r'], [3908, 'tsrange', 'R', 3909, 'r'],
  [3910, 'tstzrange', 'R', 3911, 'r'], [3912, 'daterange', 'R', 3913, 'r'], [3926, 'int8range', 'R', 3927, 'r'],
  [4451, 'int4multirange', 'R', 6150, 'm'], [4532, 'nummultirange', 'R', 6151, 'm'],
  [4533, 'tsmultirange', 'R', 6152, 'm'], [4534, 'tstzmultirange', 'R', 6153, 'm'],
  [4535, 'datemultirange', 'R', 6155, 'm'], [4536, 'int8multirange', 'R', 6157, 'm'],
];

/** Built-in types and their array types, as pg_type describes them. */
export function builtinTypes(): PgTypeInfo[] {
  const out: PgTypeInfo[] = [];
  for (const [oid, name, category, arrayOid, typtype = 'b', delimiter = ','] of BUILTIN_ROWS) {
    const common = { schema: 'pg_catalog', baseOid: 0 };
    out.push({ ...common, oid, name, typtype, category, elemOid: 0, delimiter });
    // An array type's typdelim is its element's (box[] has ';' too).
    out.push({ ...common, oid: arrayOid, name: `_${name}`, typtype: 'b', category: 'A', elemOid: oid, delimiter });
  }
  return out;
}

// --- registry -----------------------------------------------------------------------------

/**
 * The requested types plus, transitively, the base types of domains and the element types
 * of arrays, in one round trip. OIDs travel as text: they are unsigned 32-bit and a client
 * may or may not have an oid parser installed.
 */
const RESOLVE_SQL = `
WITH RECURSIVE wanted(oid) AS (
  SELECT unnest($1::pg_catalog.oid[])
  UNION
  SELECT dep.oid
  FROM wanted w
  JOIN pg_catalog.pg_type t ON t.oid = w.oid
  CROSS JOIN LATERAL (VALUES
    (t.typbasetype),
    (CASE WHEN t.typoutput = 'pg_catalog.array_out'::pg_catalog.regproc THEN t.typelem ELSE 0::pg_catalog.oid END)
  ) AS dep(oid)
  WHERE dep.oid <> 0
)
SELECT t.oid::text AS oid, n.nspname::text AS schema, t.typname::text AS name,
       t.typtype::text AS typtype, t.typcategory::text AS category,
       (CASE WHEN t.typoutput = 'pg_catalog.array_out'::pg_catalog.regproc THEN t.typelem ELSE 0::pg_catalog.oid END)::text AS elem_oid,
       t.typbasetype::text AS base_oid, t.typdelim::text AS delimiter
FROM wanted w
JOIN pg_catalog.pg_type t ON t.oid = w.oid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace`;

/** Reads a pg_type row the query above returned. */
export function typeInfoFromRow(row: Record<string, unknown>): PgTypeInfo {
  return {
    oid: Number(row['oid']),
    schema: String(row['schema']),
    name: String(row['name']),
    typtype: String(row['typtype']),
    category: String(row['category']),
    elemOid: Number(row['elem_oid']),
    baseOid: Number(row['base_oid']),
    delimiter: String(row['delimiter']),
  };
}

/**
 * Type OID -> PgTypeInfo, cached for the life of the process (what decoding uses never
 * changes for an OID). Built-ins are known without a query. Resolve before decoding:
 * decodeValue is synchronous and throws on an OID it does not know.
 */
export class TypeRegistry {
  static readonly RESOLVE_SQL = RESOLVE_SQL;
  private readonly types = new Map<number, PgTypeInfo>();
  /** One decoder per OID, built on first use (see `decoder`). */
  private decoders = new Map<number, ValueDecoder>();
  /**
   * The decoders of a relation's columns or a query's fields, by the list itself (a new
   * relation message, a new query's result, is a new list).
   */
  private listDecoders = new WeakMap<object, ValueDecoder[]>();
  /** Key columns of the relations seen (see row-identity.ts). */
  readonly identities: RowIdentities;

  /** `query` may be omitted when only built-in types (or add()ed ones) will be decoded. */
  constructor(private readonly query?: QueryFn) {
    for (const t of builtinTypes()) this.types.set(t.oid, t);
    this.identities = new RowIdentities(query);
  }

  get(oid: number): PgTypeInfo | undefined {
    return this.types.get(oid);
  }

  add(info: PgTypeInfo): void {
    this.types.set(info.oid, info);
    // A decoder built before may have followed what this replaces (a domain's base, an element type).
    this.decoders = new Map();
    this.listDecoders = new WeakMap();
  }

  /**
   * The decoder of `oid`'s values (see decodeValue), built once per OID: the type is looked
   * up, domains followed and the rule chosen once, not for every value of every row.
   */
  decoder(oid: number): ValueDecoder {
    let decode = this.decoders.get(oid);
    if (decode === undefined) {
      decode = buildDecoder(this.concrete(oid), this);
      this.decoders.set(oid, decode);
    }
    return decode;
  }

  /** The decoders of a relation's columns, in column order, cached with the column list itself. */
  decodersOf(columns: ReadonlyArray<{ typeOid: number }>): ValueDecoder[] {
    return this.decodersOfList(columns, (c) => c.typeOid);
  }

  /** decodersOf for a query's fields (pg's `fields`: `dataTypeID` where a relation has `typeOid`). */
  decodersOfFields(fields: ReadonlyArray<{ dataTypeID: number }>): ValueDecoder[] {
    return this.decodersOfList(fields, (f) => f.dataTypeID);
  }

  /** A list is a relation's columns or a query's fields, never both, so one cache serves the two. */
  private decodersOfList<T>(list: readonly T[], oidOf: (item: T) => number): ValueDecoder[] {
    let decoders = this.listDecoders.get(list);
    if (decoders === undefined) {
      decoders = list.map((item) => this.decoder(oidOf(item)));
      this.listDecoders.set(list, decoders);
    }
    return decoders;
  }

  /** Loads every unknown OID (and what it depends on) with one query. */
  async resolve(oids: Iterable<number>): Promise<void> {
    const missing = [...new Set(oids)].filter((oid) => !this.isComplete(oid));
    if (missing.length === 0) return;
    if (!this.query) throw new PgValueError(`type OIDs ${missing.join(', ')} are unknown and this TypeRegistry has no query function`);
    const { rows } = await this.query(RESOLVE_SQL, [missing.map(String)]);
    for (const row of rows) this.add(typeInfoFromRow(row));
    const still = missing.filter((oid) => !this.isComplete(oid));
    if (still.length > 0) throw new PgValueError(`type OIDs ${still.join(', ')} are not in pg_type`);
  }

  /**
   * Every reader of pgoutput resolves each relation message here, so the row identity
   * (which needs the catalog under REPLICA IDENTITY FULL) is resolved here too.
   */
  async resolveForRelation(relation: { columns: ReadonlyArray<{ typeOid: number }> } | (RelationLike & { columns: ReadonlyArray<{ typeOid: number }> })): Promise<void> {
    await this.resolve(relation.columns.map((c) => c.typeOid));
    if ('relationOid' in relation) await this.identities.resolve(relation);
  }

  resolveForFields(fields: ReadonlyArray<{ dataTypeID: number }>): Promise<void> {
    return this.resolve(fields.map((f) => f.dataTypeID));
  }

  /** The type decoding uses for `oid`: domains followed down to their base type. */
  concrete(oid: number): PgTypeInfo {
    let type = this.mustGet(oid);
    // A domain's base may be another domain; pg_type has no cycles, the bound is a guard.
    for (let depth = 0; type.typtype === 'd'; depth++) {
      if (depth > 64) throw new PgValueError(`domain chain of type ${oid} is too deep`);
      type = this.mustGet(type.baseOid);
    }
    return type;
  }

  private mustGet(oid: number): PgTypeInfo {
    const type = this.types.get(oid);
    if (!type) throw new PgValueError(`type OID ${oid} is not resolved; call TypeRegistry.resolve() first`);
    return type;
  }

  /** Known, and so is everything decoding it needs (domain base, array element). */
  private isComplete(oid: number, depth = 0): boolean {
    const type = this.types.get(oid);
    if (!type || depth > 64) return false;
    if (type.typtype === 'd' && !this.isComplete(type.baseOid, depth + 1)) return false;
    return type.elemOid === 0 || this.isComplete(type.elemOid, depth + 1);
  }
}

// --- values -------------------------------------------------------------------------------

const OID = {
  bool: 16, bytea: 17, int8: 20, int2: 21, int4: 23, oid: 26, json: 114, float4: 700, float8: 701,
  date: 1082, timestamp: 1114, timestamptz: 1184, numeric: 1700, jsonb: 3802,
} as const;

/** Decodes one non-NULL value of one type, as PostgreSQL printed it (see decodeValue). */
export type ValueDecoder = (text: string) => unknown;

/** Decodes one non-NULL value as PostgreSQL printed it under SESSION_OPTIONS. See the table above. */
export function decodeValue(text: string, oid: number, registry: TypeRegistry): unknown {
  return registry.decoder(oid)(text);
}

const INTEGER = /^-?\d+$/;
const asText: ValueDecoder = (text) => text;

function decodeInteger(text: string, typeName: string): number {
  if (!INTEGER.test(text)) throw bad(typeName, 'is not an integer');
  return Number(text);
}

function decodeBool(text: string): boolean {
  if (text === 't') return true;
  if (text === 'f') return false;
  throw bad('bool', 'is not t or f');
}

function decodeDate(text: string): string {
  if (text === 'infinity' || text === '-infinity' || DATE.test(text)) return text;
  throw bad('date', 'is not ISO (is DateStyle=ISO set? use SESSION_OPTIONS)');
}

/** The rule for one concrete type (domains already followed). */
function buildDecoder(type: PgTypeInfo, registry: TypeRegistry): ValueDecoder {
  if (type.elemOid !== 0) {
    const decodeElement = registry.decoder(type.elemOid);
    const delimiter = registry.concrete(type.elemOid).delimiter;
    // postgres-array only knows ',' as a separator; box (';') needs the general parser.
    if (delimiter === ',') return (text) => parsePgArray(text, decodeElement);
    return (text) => parseArrayLiteral(text, delimiter, decodeElement);
  }
  const name = type.name;
  switch (type.oid) {
    case OID.bool:
      return decodeBool;
    case OID.int2:
    case OID.int4:
    case OID.oid:
      return (text) => decodeInteger(text, name);
    case OID.float4:
    case OID.float8:
      return (text) => decodeFloat(text, name);
    case OID.bytea:
      return decodeBytea;
    case OID.date:
      return decodeDate;
    case OID.timestamp:
      return decodeTimestamp;
    case OID.timestamptz:
      return decodeTimestamptz;
    default:
      // int8, numeric, json, jsonb, enum, composite, range and every other type: the text itself.
      return asText;
  }
}

function bad(typeName: string, why: string): PgValueError {
  // The value itself stays out of the message: it may be personal data and end up in logs.
  return new PgValueError(`cannot decode ${typeName} value: it ${why}`);
}

function decodeFloat(text: string, typeName: string): number | string {
  if (text === 'NaN' || text === 'Infinity' || text === '-Infinity') return text;
  const n = Number(text);
  // Number('') is 0 and Number(' 1') is 1; PostgreSQL never prints either.
  if (Number.isNaN(n) || text.trim() !== text || text === '') throw bad(typeName, 'is not a number');
  return n;
}

function decodeBytea(text: string): string {
  // Buffer.from(.., 'hex') stops silently at the first bad digit, so check the text first.
  if (!text.startsWith('\\x') || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text.slice(2))) {
    throw bad('bytea', 'is not hex (is bytea_output=hex set? use SESSION_OPTIONS)');
  }
  return Buffer.from(text.slice(2), 'hex').toString('base64');
}

/**
 * array_out's syntax with any delimiter: '{a;b}', nested braces, NULL, double-quoted
 * elements with backslash escapes, and an optional '[l:u]=' bounds prefix (dropped).
 */
export function parseArrayLiteral(text: string, delimiter: string, decode: (element: string) => unknown): unknown[] {
  let i = text.startsWith('[') ? text.indexOf('=') + 1 : 0;
  const fail = (): PgValueError => bad('array', `is malformed at offset ${i}`);
  const level = (): unknown[] => {
    if (text[i] !== '{') throw fail();
    i++;
    const out: unknown[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (text[i] === '{') {
        out.push(level());
      } else if (text[i] === '"') {
        let element = '';
        for (i++; text[i] !== '"'; i++) {
          if (text[i] === '\\') i++;
          if (i >= text.length) throw fail();
          element += text[i];
        }
        i++;
        out.push(decode(element));
      } else {
        const start = i;
        while (i < text.length && text[i] !== delimiter && text[i] !== '}') i++;
        const element = text.slice(start, i);
        out.push(element === 'NULL' ? null : decode(element));
      }
      if (text[i] === '}') {
        i++;
        return out;
      }
      if (text[i] !== delimiter) throw fail();
      i++;
    }
  };
  const out = level();
  if (i !== text.length) throw fail();
  return out;
}

// --- dates and times ----------------------------------------------------------------------

const DATE = /^\d{4,}-\d\d-\d\d( BC)?$/;
const TIMESTAMP = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d{1,6})?)( BC)?$/;
// Offsets print as +HH, +HH:MM or, for local mean time before time zones, +HH:MM:SS.
const TIMESTAMPTZ = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d{1,6})?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/;

function decodeTimestamp(text: string): string {
  if (text === 'infinity' || text === '-infinity') return text;
  const m = TIMESTAMP.exec(text);
  if (!m) throw bad('timestamp', 'is not ISO (is DateStyle=ISO set? use SESSION_OPTIONS)');
  return `${m[1]}T${m[2]}${m[3] ?? ''}`;
}

/**
 * To UTC with integer seconds on the proleptic Gregorian calendar PostgreSQL uses; the
 * fraction is carried over as text (offsets are whole seconds), so no digit is lost the
 * way a JS Date (milliseconds) would lose it.
 */
/** The common case under TimeZone=UTC: a four-digit year AD printed at offset +00. */
const TIMESTAMPTZ_UTC = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?\+00$/;

function decodeTimestamptz(text: string): string {
  // What the general rule below gives for this form, without its twelve groups.
  if (TIMESTAMPTZ_UTC.test(text)) return `${text.slice(0, 10)}T${text.slice(11, -3)}Z`;
  if (text === 'infinity' || text === '-infinity') return text;
  const m = TIMESTAMPTZ.exec(text);
  if (!m) throw bad('timestamptz', 'is not ISO (is DateStyle=ISO set? use SESSION_OPTIONS)');
  const n = (i: number): number => Number(m[i] ?? 0);
  const fraction = m[7] ?? '';
  const bc = m[12] !== undefined;
  const offset = (m[8] === '-' ? -1 : 1) * (n(9) * 3600 + n(10) * 60 + n(11));
  if (offset === 0) return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${fraction}Z${bc ? ' BC' : ''}`;

  // Astronomical year numbering: 1 BC is year 0, 2 BC is year -1.
  const year = bc ? 1 - n(1) : n(1);
  const seconds = daysFromCivil(year, n(2), n(3)) * 86400 + n(4) * 3600 + n(5) * 60 + n(6) - offset;
  const days = Math.floor(seconds / 86400);
  let rest = seconds - days * 86400;
  const date = civilFromDays(days);
  const hh = Math.floor(rest / 3600);
  rest -= hh * 3600;
  const mm = Math.floor(rest / 60);
  const ss = rest - mm * 60;
  const isBc = date.year <= 0;
  const yyyy = pad(isBc ? 1 - date.year : date.year, 4);
  return `${yyyy}-${pad(date.month, 2)}-${pad(date.day, 2)}T${pad(hh, 2)}:${pad(mm, 2)}:${pad(ss, 2)}${fraction}Z${isBc ? ' BC' : ''}`;
}

const pad = (v: number, width: number): string => String(v).padStart(width, '0');

// Howard Hinnant's days_from_civil / civil_from_days: exact for any year, including <= 0.
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

// --- rows ---------------------------------------------------------------------------------

export interface DecodedRow {
  row: Record<string, unknown>;
  /** Columns whose TOASTed value did not change and so was not sent (pgoutput 'u'). */
  unchanged: string[];
}

/**
 * Decodes a pgoutput tuple (from RawTextPgoutputPlugin): an array in column order, or a
 * dictionary by column name (a key-only tuple). A value `undefined` (an array's, or a key
 * present with it) is an unchanged TOAST value: left out of `row`, listed in `unchanged`. A
 * key absent altogether (a key-only tuple's other columns) is simply not in the row.
 */
export function decodeTuple(
  relation: { columns: ReadonlyArray<{ name: string; typeOid: number }> },
  tuple: Record<string, unknown> | ReadonlyArray<unknown>,
  registry: TypeRegistry,
): DecodedRow {
  const row: Record<string, unknown> = {};
  const unchanged: string[] = [];
  const { columns } = relation;
  const decoders = registry.decodersOf(columns);
  // A full tuple in column order (RawTextPgoutputPlugin's TupleValues): every column up to its length is present.
  const byIndex = Array.isArray(tuple) ? (tuple as ReadonlyArray<unknown>) : null;
  const byName = byIndex ? null : (tuple as Record<string, unknown>);
  const count = byIndex ? Math.min(byIndex.length, columns.length) : columns.length;
  for (let i = 0; i < count; i++) {
    const name = columns[i]!.name;
    const value = byIndex ? byIndex[i] : byName![name];
    if (name === '__proto__') {
      if (value !== undefined) setOwn(row, name, typeof value === 'string' ? decoders[i]!(value) : decodeText(value, columns[i]!.typeOid, name, registry));
      else if (byIndex || Object.hasOwn(byName!, name)) unchanged.push(name);
    } else if (typeof value === 'string') row[name] = decoders[i]!(value);
    else if (value === null) row[name] = null;
    else if (value === undefined) {
      if (byIndex || Object.hasOwn(byName!, name)) unchanged.push(name);
    } else row[name] = decodeText(value, columns[i]!.typeOid, name, registry); // throws: not raw text
  }
  return { row, unchanged };
}

/** pg type parsers that leave every value as PostgreSQL printed it: what decodeQueryRow expects. */
export const RAW_TEXT_TYPES = { getTypeParser: () => (value: string) => value };

/**
 * Decodes a row of a plain query run with raw-text parsers
 * (`types: { getTypeParser: () => (v: string) => v }`), object or array row mode.
 *
 * Backfill decodes every row of a table here: the column decoders come from the registry
 * once per field list (decodersOfFields), not by a Map lookup per value, and members are
 * assigned, defined only for a column named `__proto__` (own-member.ts). A value neither
 * text nor NULL throws, as decodeText says.
 */
export function decodeQueryRow(
  fields: ReadonlyArray<{ name: string; dataTypeID: number }>,
  row: Record<string, unknown> | readonly unknown[],
  registry: TypeRegistry,
): Record<string, unknown> {
  const decoders = registry.decodersOfFields(fields);
  const byIndex = Array.isArray(row) ? (row as readonly unknown[]) : null;
  const out: Record<string, unknown> = {};
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    const value = byIndex ? byIndex[i] : (row as Record<string, unknown>)[field.name];
    const decoded = typeof value === 'string' ? decoders[i]!(value) : decodeText(value, field.dataTypeID, field.name, registry);
    if (field.name === '__proto__') setOwn(out, field.name, decoded);
    else out[field.name] = decoded;
  }
  return out;
}

function decodeText(value: unknown, oid: number, column: string, registry: TypeRegistry): unknown {
  if (value === null) return null;
  if (typeof value !== 'string') {
    // A Date, number or Buffer here means a type parser ran: the text is already lost.
    throw new PgValueError(`column ${column} is not raw text; use RawTextPgoutputPlugin or raw-text type parsers`);
  }
  return decodeValue(value, oid, registry);
}
