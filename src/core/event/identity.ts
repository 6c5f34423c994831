import * as crypto from 'node:crypto';
import { lsnHex16, parseLsn } from './lsn.js';
import type { Row } from './envelope.js';

/**
 * JSON with object keys sorted at every depth, so the same key written with columns in
 * another order (a reordered primary key, a different driver) gives the same text.
 *
 * Written as a loop over sorted keys rather than entries/filter/sort/map/join: it runs for
 * every event (the Kafka record key) and that chain allocated five arrays per call. The
 * text is exactly the same (keys sort by UTF-16 code units, `undefined` members are left
 * out, bigints print as digits); a unit test compares it with the chained form.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') return value.toString();
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const row = value as Row;
  const keys = Object.keys(row).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = row[k];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(k)}:${canonicalJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

/**
 * canonicalJson of a row key whose JSON.stringify is `keyJson`, without sorting when there
 * is nothing to sort: a key of one column with a plain value prints the same either way
 * (most keys: a primary key of one column), so its JSON serves both.
 */
export function canonicalKeyJson(key: Row, keyJson: string): string {
  let members = 0;
  let value: unknown;
  for (const name in key) {
    if (++members > 1) return canonicalJson(key);
    value = key[name];
  }
  return members === 1 && (value === null || typeof value !== 'object') ? keyJson : canonicalJson(key);
}

/**
 * Id of a captured change: commit LSN and position inside the transaction. Both are fixed
 * by PostgreSQL for a committed change, so reading the WAL again (after a crash, from
 * another capturer) yields the same id: the basis of every dedup downstream.
 */
export function changeEventId(commitLsn: string, position: number): string {
  if (!Number.isInteger(position) || position < 0) throw new RangeError(`position must be a non-negative integer, got ${position}`);
  return `${changeEventIdPrefix(parseLsn(commitLsn))}${position}`;
}

/**
 * What every id of one transaction starts with (`changeEventIdPrefix(lsn) + position` is
 * `changeEventId`): computed once per transaction, not once per event.
 */
export function changeEventIdPrefix(commitLsn: bigint): string {
  return `c-${lsnHex16(commitLsn)}-`;
}

/**
 * Id of a backfill read: the run and the row. A resumed run re-reading a row gives the
 * same id; the key is hashed so the id stays short whatever the key holds.
 */
export function backfillEventId(runId: string, schema: string, table: string, key: Row): string {
  assertRunId(runId);
  return backfillEventIdOfCanonical(runId, schema, table, canonicalJson(key));
}

/** A run id as backfill ids hold it; throws on any other. */
export function assertRunId(runId: string): void {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(runId)) throw new RangeError(`run id must be 1-64 of A-Z a-z 0-9 _ -, got '${runId}'`);
}

/**
 * `backfillEventId` for a caller that already has the key's canonical JSON and checked the
 * run id once (backfill's encoder makes millions: backfill/read-events.ts).
 */
export function backfillEventIdOfCanonical(runId: string, schema: string, table: string, canonicalKey: string): string {
  return `r-${runId}-${sha256Base64url(`${schema}\u0000${table}\u0000${canonicalKey}`).slice(0, 22)}`;
}

/** crypto.hash (Node 20.12+) is one native call; createHash is three and an object. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'base64url') => string }).hash;
const sha256Base64url: (text: string) => string =
  typeof oneShot === 'function' ? (text) => oneShot('sha256', text, 'base64url') : (text) => crypto.createHash('sha256').update(text).digest('base64url');

/** Kafka record key: table and primary key, so one row's events share a partition and stay ordered. */
export function recordKey(schema: string, table: string, key: Row | null): string {
  return `${recordKeyPrefix(schema, table)}${key === null ? '*' : canonicalJson(key)}`;
}

/** What every record key of one table starts with (encoders that print a table's keys from a template). */
export function recordKeyPrefix(schema: string, table: string): string {
  return `${schema}.${table}:`;
}
