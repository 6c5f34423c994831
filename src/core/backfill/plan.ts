import type { Row } from '../event/envelope.js';
import pg from 'pg';
import { quoteIdent, quoteTable } from '../postgres/sql.js';

const { escapeLiteral } = pg;

/**
 * The SQL of a backfill, as pure functions: table names, the keyset query of one chunk
 * and its parameters. Keyset pagination (WHERE key > last key ORDER BY key LIMIT n) reads
 * each chunk through the key's index, so chunk 1,000 costs what chunk 1 costs; OFFSET
 * would rescan every earlier row.
 */
export interface TableRef {
  schema: string;
  table: string;
}

export const tableText = (t: TableRef): string => `${t.schema}.${t.table}`;

/**
 * The tables given that `stream` does not capture (not in a non-empty postgres.tables):
 * rows loaded from them reach the sinks once and are never updated by a change.
 */
export function notCaptured(tables: readonly TableRef[], captured: readonly string[]): string[] {
  if (captured.length === 0) return [];
  const known = new Set(captured.map((t) => (t.includes('.') ? t : `public.${t}`)));
  return tables.map(tableText).filter((t) => !known.has(t));
}

/** `schema.table`, `table` (schema public) or `"Quoted"."Names"` with `""` for a quote. */
export function parseTableName(text: string): TableRef {
  const parts: string[] = [];
  let i = 0;
  const s = text.trim();
  while (i < s.length) {
    if (s[i] === '"') {
      let name = '';
      i++;
      for (;;) {
        if (i >= s.length) throw new RangeError(`unterminated quoted name in '${text}'`);
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            name += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        name += s[i++];
      }
      parts.push(name);
    } else {
      const end = s.indexOf('.', i);
      const raw = end === -1 ? s.slice(i) : s.slice(i, end);
      if (!/^[A-Za-z_][A-Za-z0-9_$]*$/.test(raw)) throw new RangeError(`'${raw}' in '${text}' is not a table name (quote it: "${raw}")`);
      // Unquoted names fold to lower case, as PostgreSQL folds them.
      parts.push(raw.toLowerCase());
      i = end === -1 ? s.length : end;
    }
    if (i < s.length) {
      if (s[i] !== '.') throw new RangeError(`expected '.' after a name in '${text}'`);
      i++;
      if (i >= s.length) throw new RangeError(`'${text}' ends with '.'`);
    }
  }
  if (parts.length === 1) return { schema: 'public', table: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, table: parts[1]! };
  throw new RangeError(`'${text}' is not a table name: use schema.table`);
}

export const qualified = (t: TableRef): string => quoteTable(t.schema, t.table);

/**
 * One chunk: the rows after `afterKey` (the key columns' text, as PostgreSQL printed
 * them: text in, text out, so every key type round-trips, bytea and timestamps included),
 * in key order. The parameters are left untyped so PostgreSQL reads them as the columns'
 * own types. `where` is the operator's own condition, bracketed so an OR in it cannot
 * escape the keyset condition.
 */
export function chunkQuery(
  t: TableRef,
  keyColumns: readonly string[],
  afterKey: readonly string[] | null,
  where: string | null,
  limit: number,
  /** How the i-th saved key value is written in the statement: a parameter unless told otherwise (chunkCopy). */
  valueAt: (i: number) => string = (i) => `$${i + 1}`,
): { text: string; values: string[] } {
  if (keyColumns.length === 0) throw new RangeError(`${tableText(t)} has no key columns`);
  if (afterKey !== null && afterKey.length !== keyColumns.length) {
    throw new RangeError(`the saved key of ${tableText(t)} has ${afterKey.length} values for ${keyColumns.length} key columns; did the primary key change?`);
  }
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`chunk size must be a positive integer, got ${limit}`);
  const cols = keyColumns.map(quoteIdent);
  const conditions: string[] = [];
  if (afterKey !== null) {
    const params = keyColumns.map((_, i) => valueAt(i));
    conditions.push(cols.length === 1 ? `${cols[0]} > ${params[0]}` : `(${cols.join(', ')}) > (${params.join(', ')})`);
  }
  if (where !== null && where.trim() !== '') conditions.push(`(${where})`);
  const text = [
    `SELECT * FROM ${qualified(t)}`,
    conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '',
    `ORDER BY ${cols.join(', ')}`,
    `LIMIT ${limit}`,
  ]
    .filter((s) => s !== '')
    .join(' ');
  return { text, values: afterKey === null ? [] : [...afterKey] };
}

/**
 * One chunk as `COPY (SELECT ...) TO STDOUT` (what backfill reads: see backfill.ts). COPY
 * takes no parameters, so the saved key values are literals (pg's escapeLiteral), left
 * untyped like the parameters they replace: each is read as the type of the key column it is
 * compared with. Written into the statement where the parameters would be, never by
 * replacing `$n` in its text (a quoted table name or the operator's condition may hold one).
 */
export function chunkCopy(t: TableRef, keyColumns: readonly string[], afterKey: readonly string[] | null, where: string | null, limit: number): string {
  const { text } = chunkQuery(t, keyColumns, afterKey, where, limit, (i) => escapeLiteral(afterKey![i]!));
  return `COPY (${text}) TO STDOUT`;
}

/** The key of a row as the envelope carries it: the key columns' decoded values. */
export function keyOf(row: Row, keyColumns: readonly string[]): Row {
  const key: Row = {};
  for (const c of keyColumns) key[c] = row[c];
  return key;
}
