import type { Config } from '../config/types.js';
import { checkpointAdmin } from '../clients/restart-safe-admin.js';
import { makePgClient } from '../clients/postgres.js';
import { listRuns } from '../backfill/kafka-writer.js';
import { lockHolders } from '../backfill/lock.js';
import { parseTableName } from '../backfill/plan.js';
import { isDone, totalRows } from '../backfill/progress.js';
import type { Logger } from '../logger.js';

export interface BackfillRunStatus {
  run: string;
  /** running: a process holds its tables' locks; interrupted: nobody does and it is not done. */
  state: 'running' | 'interrupted' | 'done';
  tables: Array<{ table: string; rows: number; done: boolean }>;
  /** The table in progress (null when done). */
  current: string | null;
  rows_total: number;
  chunks: number;
  started_at: string;
  updated_at: string;
  /** Seconds since its last committed chunk. */
  age_seconds: number;
  /** PostgreSQL pid of the session holding its lock, when running. */
  pid: number | null;
}

export interface BackfillStatus {
  runs: BackfillRunStatus[];
  errors: string[];
}

/** Finished runs older than this are left out: `status` is about what is going on. */
const DONE_SHOWN_FOR_MS = 24 * 3600 * 1000;

/** Backfill runs of this pipeline: progress from Kafka, liveness from the table locks in PostgreSQL. */
export async function backfillStatus(config: Config, logger: Logger, now = Date.now()): Promise<BackfillStatus> {
  const status: BackfillStatus = { runs: [], errors: [] };
  const admin = checkpointAdmin(config.kafka, logger, { retries: 3, quiet: true });
  const pg = makePgClient(config.postgres);
  pg.on('error', () => {});
  try {
    await admin.connect();
    const runs = await listRuns(admin, config);
    if (runs.length === 0) return status;
    const tables = [...new Set(runs.flatMap((r) => r.tables))].map(parseTableName);
    let holders = new Map<string, { pid: number; application_name: string }>();
    try {
      await pg.connect();
      holders = await lockHolders(pg, tables);
    } catch (err) {
      status.errors.push(`backfill locks: ${(err as Error).message}`);
    }
    for (const p of runs) {
      const holder = p.tables.map((t) => holders.get(t)).find((h) => h?.application_name === `streamctl backfill ${p.run}`);
      const done = isDone(p);
      const age = (now - Date.parse(p.updated_at)) / 1000;
      if (done && age * 1000 > DONE_SHOWN_FOR_MS) continue;
      status.runs.push({
        run: p.run,
        state: done ? 'done' : holder ? 'running' : 'interrupted',
        tables: p.tables.map((table, i) => ({ table, rows: p.rows[i] ?? 0, done: i < p.table_index })),
        current: done ? null : (p.tables[p.table_index] ?? null),
        rows_total: totalRows(p),
        chunks: p.chunks,
        started_at: p.started_at,
        updated_at: p.updated_at,
        age_seconds: Math.round(age * 10) / 10,
        pid: holder?.pid ?? null,
      });
    }
  } catch (err) {
    status.errors.push(`backfill runs: ${(err as Error).message}`);
  } finally {
    await admin.disconnect().catch(() => {});
    await pg.end().catch(() => {});
  }
  return status;
}
