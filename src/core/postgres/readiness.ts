import type pg from 'pg';
import type { ReadinessProblem } from '../health/types.js';
import { quoteQualified } from './sql.js';

/**
 * Whether PostgreSQL is ready for streamctl: the settings logical replication needs and
 * the configured tables. Read by capture's and backfill's preflight (which refuse to start,
 * exit 4) and by `status` (which lists the same problems with the same fixes).
 */

export interface Settings {
  wal_level: string;
  max_replication_slots: string;
  max_wal_senders: string;
  server_version: string;
  slots_used: string;
  is_replication_role: boolean;
  /** Whether `slot` (when asked about one) exists already: it then needs no free slot. */
  slot_exists: boolean;
}

/** The settings logical replication depends on, read in one query (status and capture preflight). */
export async function readSettings(client: pg.Client, slot = ''): Promise<Settings> {
  const { rows } = await client.query<Settings>(
    `SELECT current_setting('wal_level') AS wal_level,
            current_setting('max_replication_slots') AS max_replication_slots,
            current_setting('max_wal_senders') AS max_wal_senders,
            current_setting('server_version') AS server_version,
            (SELECT count(*) FROM pg_replication_slots)::text AS slots_used,
            (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS is_replication_role,
            EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS slot_exists`,
    [slot],
  );
  return rows[0]!;
}

/** Pure, so the fixes can be tested without a misconfigured server. */
export function readinessProblems(s: Omit<Settings, 'slot_exists'>, user: string): ReadinessProblem[] {
  const problems: ReadinessProblem[] = [];
  if (s.wal_level !== 'logical') {
    problems.push({
      component: 'postgres',
      problem: `wal_level is '${s.wal_level}', logical replication needs 'logical'`,
      fix: "run ALTER SYSTEM SET wal_level = 'logical'; as a superuser (or set wal_level = logical in postgresql.conf), then restart PostgreSQL",
    });
  }
  if (Number(s.max_replication_slots) <= Number(s.slots_used)) {
    problems.push({
      component: 'postgres',
      problem: `no free replication slot (${s.slots_used} of max_replication_slots=${s.max_replication_slots} in use)`,
      fix: 'drop an unused slot with SELECT pg_drop_replication_slot(name), or raise max_replication_slots and restart PostgreSQL',
    });
  }
  if (Number(s.max_wal_senders) < 1) {
    problems.push({
      component: 'postgres',
      problem: 'max_wal_senders is 0, so no replication connection can be opened',
      fix: 'set max_wal_senders = 10 (at least 1) in postgresql.conf and restart PostgreSQL',
    });
  }
  if (!s.is_replication_role) {
    problems.push({
      component: 'postgres',
      problem: `role '${user}' may not open a replication connection`,
      fix: `run ALTER ROLE "${user}" WITH REPLICATION; as a superuser`,
    });
  }
  return problems;
}

/** The configured `schema.table` names that do not exist. */
export async function missingTables(client: pg.Client, tables: string[]): Promise<string[]> {
  if (tables.length === 0) return [];
  const { rows } = await client.query<{ name: string }>(
    `SELECT t AS name FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NULL`,
    [tables.map((t) => quoteQualified(t))],
  );
  return rows.map((r) => r.name.replace(/"/g, ''));
}
