import { EnvironmentNotReadyError } from '../errors.js';
import type { QueryFn } from './pg-types.js';

/**
 * Which columns identify a row: the key of every event, Kafka record key, Redis key and
 * BigQuery row_key. One rule, shared by capture (pgoutput relations) and backfill:
 *
 * | replica identity | key                                                                     |
 * |------------------|-------------------------------------------------------------------------|
 * | DEFAULT          | the primary key                                                         |
 * | USING INDEX i    | the columns of i                                                        |
 * | FULL             | the primary key, else the first (by name) unique, valid, immediate,     |
 * |                  | non-partial index on plain NOT NULL columns; none: the table has no key |
 * | NOTHING          | none                                                                    |
 *
 * Under FULL pgoutput flags every column as part of the identity, so its keyColumns are the
 * whole row: a key that changes with every update. That is why FULL is looked up in the
 * catalog instead. The catalog is read when the relation message arrives (PostgreSQL sends
 * one before the first change of a table and again after each ALTER), so the key follows
 * the table as it is then, not as it was when the WAL was written.
 */
export type ReplicaIdentity = 'd' | 'i' | 'f' | 'n';

export interface TableIdentity {
  replident: ReplicaIdentity;
  /** Key columns in index order; empty when the table has no row identity. */
  columns: string[];
}

export const TABLE_IDENTITY_SQL = `
WITH t AS (SELECT oid, relreplident FROM pg_class WHERE oid = $1::oid),
candidates AS (
  SELECT i.indkey, ic.relname,
         CASE WHEN i.indisreplident THEN 0 WHEN i.indisprimary THEN 1 ELSE 2 END AS rank
    FROM t
    JOIN pg_index i ON i.indrelid = t.oid
    JOIN pg_class ic ON ic.oid = i.indexrelid
   WHERE i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
     AND ((t.relreplident = 'i' AND i.indisreplident)
       OR (t.relreplident = 'd' AND i.indisprimary)
       OR (t.relreplident = 'f' AND NOT EXISTS (
             SELECT 1 FROM unnest(i.indkey::int2[]) AS k(attnum)
               JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
              WHERE NOT a.attnotnull)))
),
chosen AS (SELECT indkey FROM candidates ORDER BY rank, relname LIMIT 1)
SELECT t.relreplident::text AS replident,
       COALESCE((SELECT json_agg(a.attname::text ORDER BY k.ord)
                   FROM chosen, unnest(chosen.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum), '[]')::text AS columns
  FROM t`;

/** The identity of the table with this OID, or null when there is no such table. */
export async function readTableIdentity(query: QueryFn, oid: number): Promise<TableIdentity | null> {
  const { rows } = await query(TABLE_IDENTITY_SQL, [oid]);
  // Text, whatever type parsers the caller's connection uses (backfill's keep raw text).
  const row = rows[0] as { replident: ReplicaIdentity; columns: string } | undefined;
  return row ? { replident: row.replident, columns: JSON.parse(row.columns) as string[] } : null;
}

/** A FULL table without any key: there is no row identity to give its events. */
export class NoRowIdentityError extends EnvironmentNotReadyError {
  constructor(readonly table: string) {
    super(
      `table ${table} has REPLICA IDENTITY FULL and no primary key or unique index on NOT NULL columns, so its rows have no identity ` +
        `(a whole-row key would change with every update): add a primary key (ALTER TABLE ${table} ADD PRIMARY KEY (...)) or a unique index on NOT NULL columns`,
    );
  }
}

export interface RelationLike {
  relationOid: number;
  schema: string;
  name: string;
  replicaIdentity: 'default' | 'nothing' | 'full' | 'index';
  keyColumns: string[];
}

/** Key columns per pgoutput relation, resolved once per relation message. */
export class RowIdentities {
  private readonly byOid = new Map<number, string[]>();

  /** `query` may be omitted when no FULL table will be seen (or set() is used). */
  constructor(private readonly query?: QueryFn) {}

  set(oid: number, columns: string[]): void {
    this.byOid.set(oid, columns);
  }

  async resolve(relation: RelationLike): Promise<void> {
    if (relation.replicaIdentity !== 'full') {
      // pgoutput's key flags are exactly the primary key or the replica identity index here.
      this.byOid.set(relation.relationOid, relation.keyColumns);
      return;
    }
    if (!this.query) throw new Error(`table ${relation.schema}.${relation.name} has REPLICA IDENTITY FULL: its key needs a catalog lookup and no query function was given`);
    const identity = await readTableIdentity(this.query, relation.relationOid);
    this.byOid.set(relation.relationOid, identity?.columns ?? []);
  }

  /** The key columns of a resolved relation; throws NoRowIdentityError when it has none. */
  keyColumns(relation: RelationLike): string[] {
    const columns = this.byOid.get(relation.relationOid) ?? (relation.replicaIdentity === 'full' ? [] : relation.keyColumns);
    if (columns.length === 0) throw new NoRowIdentityError(`${relation.schema}.${relation.name}`);
    return columns;
  }
}
