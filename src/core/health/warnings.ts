import type { Config } from '../config/types.js';
import type { StreamReady } from './stream-ready.js';
import { derivedNames } from '../config/names.js';
import { makePgClient } from '../clients/postgres.js';
import type { StuckComponent } from './progress.js';

/**
 * What `status` warns about without failing: things that are fine now and dangerous later,
 * each with what to do. An inactive slot keeps every WAL segment from its restart_lsn on,
 * so a forgotten one fills the disk; with max_slot_wal_keep_size = -1 nothing stops it.
 */
export interface StatusWarning {
  kind: 'inactive_slot' | 'inactive_other_slot' | 'unbounded_slot_wal' | 'history_lost';
  message: string;
  fix: string;
  slot?: string;
  retained_wal_bytes?: number;
}

const size = (bytes: number): string =>
  bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

export async function slotWarnings(config: Config): Promise<StatusWarning[]> {
  const own = derivedNames(config).slot;
  const threshold = config.health.slotWalWarnBytes;
  const pg = makePgClient(config.postgres);
  pg.on('error', () => {});
  await pg.connect();
  try {
    const { rows: slots } = await pg.query<{ slot_name: string; database: string | null; retained: string | null }>(
      `SELECT slot_name, database, (pg_current_wal_lsn() - restart_lsn)::text AS retained
         FROM pg_replication_slots WHERE NOT active ORDER BY (pg_current_wal_lsn() - restart_lsn) DESC NULLS LAST`,
    );
    const { rows: setting } = await pg.query<{ value: string }>(`SELECT current_setting('max_slot_wal_keep_size') AS value`);
    const warnings: StatusWarning[] = [];
    for (const s of slots) {
      const retained = Number(s.retained ?? 0);
      if (retained <= threshold) continue;
      const drop = `SELECT pg_drop_replication_slot('${s.slot_name}')`;
      warnings.push(
        s.slot_name === own
          ? {
              kind: 'inactive_slot',
              slot: s.slot_name,
              retained_wal_bytes: retained,
              message: `this pipeline's slot ${s.slot_name} is inactive and retains ${size(retained)} of WAL (over health.slotWalWarnBytes ${size(threshold)})`,
              fix: `start capture (streamctl stream) so it catches up and frees it; if this pipeline is retired, drop the slot (${drop}): its changes not yet in Kafka are lost`,
            }
          : {
              kind: 'inactive_other_slot',
              slot: s.slot_name,
              retained_wal_bytes: retained,
              message: `inactive slot ${s.slot_name}${s.database ? ` (database ${s.database})` : ''} retains ${size(retained)} of WAL on this server`,
              fix: `if nothing will read it again (a stale test run, a retired consumer), drop it: ${drop}`,
            },
      );
    }
    if (setting[0]?.value === '-1') {
      warnings.push({
        kind: 'unbounded_slot_wal',
        message: 'max_slot_wal_keep_size is -1 (unbounded): an inactive slot can retain WAL until the disk is full',
        fix: "bound it (ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf()); a slot past the bound is invalidated and its pipeline needs a new slot and a backfill",
      });
    }
    return warnings;
  } finally {
    await pg.end().catch(() => {});
  }
}

/** The stuck components the running `stream` of this pipeline reports; null when no stream of this pipeline answers. */
export function streamStuck(config: Config, ready: { answered: boolean; body: StreamReady }): StuckComponent[] | null {
  if (!ready.answered || ready.body.pipeline !== config.pipeline.id) return null; // none, or another pipeline's process on that port
  return ready.body.stuck ?? [];
}

/** What the running stream of this pipeline says a sink lost with its history (a dropped BigQuery table), with the range. */
export function historyWarnings(config: Config, ready: { answered: boolean; body: StreamReady }): StatusWarning[] {
  if (!ready.answered || ready.body.pipeline !== config.pipeline.id) return [];
  return (ready.body.history_lost ?? []).map((h) => ({ kind: 'history_lost' as const, message: `${h.sink} at ${h.at}: ${h.message}`, fix: h.fix }));
}
