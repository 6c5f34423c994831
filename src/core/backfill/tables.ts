import type pg from 'pg';
import { EnvironmentNotReadyError, StreamctlError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { qualified, tableText, type TableRef } from './plan.js';
import { NoRowIdentityError, readTableIdentity } from '../source/row-identity.js';

export interface TableInfo {
  ref: TableRef;
  /** The columns capture uses as the row's key (see source/row-identity.ts). */
  keyColumns: string[];
}

/**
 * The key of each table, or every problem at once. The backfill key must be the key
 * capture puts in its events (the replica identity), or a read and a change of the same
 * row would land on different keys in the sinks.
 */
export async function describeTables(client: pg.Client, tables: readonly TableRef[], command = 'backfill'): Promise<TableInfo[]> {
  const problems: string[] = [];
  let missing = 0;
  const out: TableInfo[] = [];
  for (const ref of tables) {
    const name = tableText(ref);
    const { rows: found } = await client.query<{ oid: number | null }>('SELECT to_regclass($1)::oid AS oid', [qualified(ref)]);
    const oid = found[0]?.oid ?? null;
    if (oid === null) {
      problems.push(`table ${name} does not exist`);
      missing++;
      continue;
    }
    // The same rule as capture's (also under REPLICA IDENTITY FULL), so a read and a change of one row share a key.
    const identity = await readTableIdentity((sql, params) => client.query(sql, params), oid);
    if (!identity || identity.columns.length === 0) {
      problems.push(
        identity?.replident === 'f'
          ? new NoRowIdentityError(name).message
          : `table ${name} has no primary key (or replica identity index): backfill pages through a table by its key; add a primary key`,
      );
      continue;
    }
    out.push({ ref, keyColumns: identity.columns });
  }
  if (problems.length > 0) {
    // verify describes its tables here too: the message names the command the operator ran.
    const message = `cannot ${command} (${problems.length} problem${problems.length === 1 ? '' : 's'})`;
    // A table that is not there is a mistyped --table (usage); one without a key needs a schema change.
    if (missing > 0) throw new StreamctlError(message, EXIT.USAGE, problems);
    throw new EnvironmentNotReadyError(message, problems);
  }
  return out;
}

/** The planner's row estimate (for the ETA): cheap, and labelled as an estimate wherever shown. */
export async function estimateRows(client: pg.Client, ref: TableRef, where: string | null): Promise<number> {
  let rows: Array<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>;
  try {
    ({ rows } = await client.query(`EXPLAIN (FORMAT JSON) SELECT 1 FROM ${qualified(ref)}${where ? ` WHERE (${where})` : ''}`));
  } catch (err) {
    // Class 42 (syntax error, no such column...) on a table known to exist: the --where typed. A usage error, said before any chunk.
    if (where && /^42/.test((err as { code?: string }).code ?? '')) {
      throw new StreamctlError(`--where is not valid for ${tableText(ref)} (${(err as Error).message})`, EXIT.USAGE, [`--where ${where}`]);
    }
    throw err;
  }
  const plan = rows[0]?.['QUERY PLAN'];
  return Math.max(0, Math.round(plan?.[0]?.Plan['Plan Rows'] ?? 0));
}
