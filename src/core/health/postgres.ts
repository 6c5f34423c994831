import type { Config } from '../config/types.js';
import { missingTables, readinessProblems, readSettings } from '../postgres/readiness.js';
import { makePgClient } from '../clients/postgres.js';
import type { ProbeResult, ReadinessProblem } from './types.js';
import { timed } from '../timed.js';
import { endpointOf } from './probes.js';

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
