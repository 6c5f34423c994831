import type pg from 'pg';
import type { Config } from '../config/types.js';
import { missingTables } from '../capture/setup.js';
import { makePgClient } from '../clients/postgres.js';
import type { ProbeResult, ReadinessProblem } from './types.js';
import { timed } from './timed.js';
import { endpointOf } from './probes.js';

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

/** Up/down, round trip, and whether the server is set up for logical replication. */
export async function probePostgres(config: Config): Promise<ProbeResult> {
  const pgc = config.postgres;
  const endpoint = endpointOf('postgres', config);
  const client = makePgClient(pgc);
  client.on('error', () => {}); // a dropped connection is reported by the query that fails
  try {
    await client.connect();
    const { ms } = await timed(() => client.query('SELECT 1'));
    const s = await readSettings(client);
    // stream's preflight refuses a missing table (exit 4): status says so before it is started.
    const missing = await missingTables(client, pgc.tables);
    return {
      health: {
        state: 'up',
        endpoint,
        rtt_ms: ms,
        detail: {
          server_version: s.server_version,
          wal_level: s.wal_level,
          replication_slots: `${s.slots_used}/${s.max_replication_slots}`,
          max_wal_senders: Number(s.max_wal_senders),
        },
      },
      problems: [
        ...readinessProblems(s, pgc.user),
        ...missing.map((t): ReadinessProblem => ({ component: 'postgres', problem: `table ${t} does not exist`, fix: 'create it, or remove it from postgres.tables' })),
      ],
    };
  } catch (err) {
    return { health: { state: 'down', endpoint, rtt_ms: null, detail: {}, error: (err as Error).message }, problems: [] };
  } finally {
    await client.end().catch(() => {});
  }
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
