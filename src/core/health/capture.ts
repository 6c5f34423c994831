import type { Config } from '../config/types.js';
import { derivedNames } from '../config/names.js';

import { kafkaClient } from '../clients/rdkafka.js';
import { checkpointAdmin, RestartSafeAdmin } from '../clients/restart-safe-admin.js';
import { makePgClient } from '../clients/postgres.js';
import { readCheckpoint } from '../capture/kafka-writer.js';
import type { Checkpoint } from '../capture/checkpoint.js';
import type { Logger } from '../logger.js';
import { deliveryLag, type DeliveryLag } from '../delivery/lag.js';
import { countOpenLetters } from '../replay/open-letters.js';

/** Where capture stands: its slot in PostgreSQL and its last checkpoint in Kafka. */
export interface CaptureStatus {
  pipeline: string;
  slot: {
    name: string;
    exists: boolean;
    active: boolean;
    /** Current WAL position minus what capture confirmed: how far behind it is. */
    lag_bytes: number | null;
    /** WAL PostgreSQL keeps for the slot (it cannot be recycled until capture moves on). */
    retained_wal_bytes: number | null;
  } | null;
  checkpoint: (Checkpoint & { age_seconds: number }) | null;
  /** Lag per sink and DLQ depth. */
  delivery: DeliveryLag | null;
  errors: string[];
}

export async function captureStatus(config: Config, logger: Logger): Promise<CaptureStatus> {
  const names = derivedNames(config);
  const status: CaptureStatus = { pipeline: config.pipeline.id, slot: null, checkpoint: null, delivery: null, errors: [] };
  const pg = makePgClient(config.postgres);
  pg.on('error', () => {});
  // A few quick retries: the group-coordinator lookup behind the offset fetch can need one.
  const admin = checkpointAdmin(config.kafka, logger, { retries: 3, quiet: true });
  await Promise.all([
    (async () => {
      try {
        await pg.connect();
        const { rows } = await pg.query<{ active: boolean; lag: string | null; retained: string | null }>(
          `SELECT active, (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag, (pg_current_wal_lsn() - restart_lsn)::text AS retained
             FROM pg_replication_slots WHERE slot_name = $1`,
          [names.slot],
        );
        const row = rows[0];
        status.slot = {
          name: names.slot,
          exists: row !== undefined,
          active: row?.active ?? false,
          lag_bytes: row?.lag ? Number(row.lag) : null,
          retained_wal_bytes: row?.retained ? Number(row.retained) : null,
        };
      } catch (err) {
        status.errors.push(`slot: ${(err as Error).message}`);
      } finally {
        await pg.end().catch(() => {});
      }
    })(),
    (async () => {
      try {
        await admin.connect();
        const checkpoint = await readCheckpoint(admin, config);
        if (checkpoint) {
          const age = checkpoint.written_at ? (Date.now() - Date.parse(checkpoint.written_at)) / 1000 : NaN;
          status.checkpoint = { ...checkpoint, age_seconds: Number.isFinite(age) ? Math.round(age * 10) / 10 : -1 };
        }
      } catch (err) {
        status.errors.push(`checkpoint: ${(err as Error).message}`);
      } finally {
        await admin.disconnect().catch(() => {});
      }
    })(),
    (async () => {
      // Committed offsets through a consumer, safe during a Kafka restart (clients/restart-safe-admin.ts); the checkpoint above needs the admin's exact metadata.
      const delivery = kafkaClient(config.kafka, logger, { retries: 3, quiet: true });
      const deliveryAdmin = new RestartSafeAdmin(config.kafka, logger, 0);
      try {
        await deliveryAdmin.connect();
        status.delivery = await deliveryLag(deliveryAdmin, config, () => countOpenLetters(delivery, config));
      } catch (err) {
        status.errors.push(`delivery: ${(err as Error).message}`);
      } finally {
        await deliveryAdmin.disconnect().catch(() => {});
      }
    })(),
  ]);
  return status;
}
