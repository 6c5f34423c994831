import type pg from 'pg';
import { StreamctlError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { tableText, type TableRef } from './plan.js';

/**
 * One backfill per table at a time: a session-level advisory lock per table, held by a
 * connection that lives as long as the run. PostgreSQL releases it when that session
 * ends, however the process ends (SIGKILL included), so there is no stale lock to clean.
 */
export const lockName = (t: TableRef): string => `streamctl.backfill:${tableText(t)}`;

export interface LockHolder {
  table: string;
  pid: number;
  application_name: string;
  since: string;
}

export class BackfillLockedError extends StreamctlError {
  constructor(readonly holders: LockHolder[]) {
    super(
      `${holders.length === 1 ? 'a table is' : `${holders.length} tables are`} already being backfilled; wait for that run to finish or stop it (SIGTERM), then try again`,
      EXIT.RUNTIME,
      holders.map((h) => `${h.table}: held by ${h.application_name || 'an unnamed session'} (PostgreSQL pid ${h.pid}, connected since ${h.since})`),
    );
  }
}

/** Takes every table's lock or none: if any is held, releases those taken and throws, naming each holder. */
export async function lockTables(client: pg.Client, tables: readonly TableRef[]): Promise<void> {
  const taken: TableRef[] = [];
  const busy: TableRef[] = [];
  for (const t of tables) {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [lockName(t)]);
    (rows[0]?.ok ? taken : busy).push(t);
  }
  if (busy.length === 0) return;
  for (const t of taken) await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockName(t)]);
  const holders = await lockHolders(client, busy);
  // A holder that let go between the two queries is still reported, without details.
  throw new BackfillLockedError(busy.map((t) => holders.get(tableText(t)) ?? { table: tableText(t), pid: 0, application_name: 'a session that has just ended', since: '?' }));
}

/** Who holds each table's lock (for the error above and for `status`). */
export async function lockHolders(client: pg.Client, tables: readonly TableRef[]): Promise<Map<string, LockHolder>> {
  const out = new Map<string, LockHolder>();
  if (tables.length === 0) return out;
  // pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low 32 bits).
  const { rows } = await client.query<{ name: string; pid: number; application_name: string; since: string }>(
    `WITH wanted AS (SELECT n AS name, hashtextextended(n, 0) AS h FROM unnest($1::text[]) AS n)
     SELECT w.name, a.pid, a.application_name, to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since
       FROM wanted w
       JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid::text::bigint = ((w.h >> 32) & 4294967295) AND l.objid::text::bigint = (w.h & 4294967295)
       JOIN pg_stat_activity a ON a.pid = l.pid`,
    [tables.map(lockName)],
  );
  const byName = new Map(tables.map((t) => [lockName(t), tableText(t)]));
  for (const r of rows) {
    const table = byName.get(r.name);
    if (table) out.set(table, { table, pid: r.pid, application_name: r.application_name, since: r.since });
  }
  return out;
}
