import { randomBytes } from 'node:crypto';

/**
 * What each transaction of the load does. The load table's layout is fixed so that every
 * sink's copy of an event names it: `ev` is the event's sequence number, `intended_ms` its
 * scheduled send time, `big` an optional large value that PostgreSQL TOASTs out of line.
 */
export const WORKLOADS = ['insert', 'update', 'mixed', 'delete-heavy'] as const;
export type Workload = (typeof WORKLOADS)[number];

/** Shares of inserts, updates and deletes per workload (updates fall back to inserts while no row exists). */
export const MIX: Record<Workload, { insert: number; update: number; delete: number }> = {
  insert: { insert: 1, update: 0, delete: 0 },
  update: { insert: 0.1, update: 0.9, delete: 0 },
  mixed: { insert: 0.6, update: 0.3, delete: 0.1 },
  'delete-heavy': { insert: 0.45, update: 0.1, delete: 0.45 },
};

export const LOAD_COLUMNS = ['id', 'ev', 'intended_ms', 'payload', 'big'] as const;

export const createTableSql = (table: string): string =>
  `CREATE TABLE ${table} (id int8 PRIMARY KEY, ev int8 NOT NULL, intended_ms int8 NOT NULL, payload text NOT NULL, big text)`;

/**
 * One statement per transaction (autocommit: one round trip): inserts ($1 ids, $2 evs,
 * $3 payloads, $4 big values), updates ($5 old ids, $6 new ids: a key change when they
 * differ, $7 evs, $8 payloads, $9 big values, NULL keeps the old one) and deletes ($10 ids);
 * $11 is the transaction's intended send time.
 */
export const transactionSql = (table: string): string => `WITH
  ins AS (INSERT INTO ${table} (id, ev, intended_ms, payload, big)
          SELECT i, e, $11::int8, p, b FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[]) AS x(i, e, p, b) RETURNING 1),
  upd AS (UPDATE ${table} t SET id = u.nid, ev = u.e, intended_ms = $11::int8, payload = u.p, big = COALESCE(u.b, t.big)
          FROM unnest($5::int8[], $6::int8[], $7::int8[], $8::text[], $9::text[]) AS u(oid, nid, e, p, b)
          WHERE t.id = u.oid RETURNING 1),
  del AS (DELETE FROM ${table} WHERE id = ANY($10::int8[]) RETURNING 1)
SELECT (SELECT count(*) FROM ins) + (SELECT count(*) FROM upd) + (SELECT count(*) FROM del) AS changed`;

export interface WorkloadOptions {
  workload: Workload;
  rowBytes: number;
  /** Share (0-1) of updates that change the primary key. */
  keyChangeShare: number;
  /** Share (0-1) of inserts and updates that carry a large value in `big`. */
  toastShare: number;
  toastBytes: number;
}

/** Text of `bytes` random characters (base64 of random bytes: does not compress, so a large one is stored out of line). */
export const randomText = (bytes: number): string => randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64').slice(0, bytes);
