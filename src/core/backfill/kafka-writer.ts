import type { Admin } from '../clients/rdkafka.js';
import type { Logger } from '../logger.js';
import { derivedNames } from '../config/names.js';
import type { Config } from '../config/types.js';
import { nativeCheckpointedProducer, readCheckpoint, type CheckpointedProducer, type CheckpointStore, type OffsetAdmin } from '../kafka/checkpointed-producer.js';
import { decodeProgress, encodeProgress, totalRows, type BackfillProgress } from './progress.js';

export const backfillTransactionalId = (config: Config, run: string): string => `streamctl-backfill-${config.pipeline.id}-${run}`;
export const backfillGroupPrefix = (config: Config): string => `streamctl-${config.pipeline.id}-backfill-`;
export const backfillGroup = (config: Config, run: string): string => `${backfillGroupPrefix(config)}${run}`;

/** A backfill run's producer: one transaction per chunk, with the run's progress past it as the checkpoint. */
export type BackfillProducer = CheckpointedProducer<BackfillProgress>;

function progressStore(config: Config, run: string): CheckpointStore<BackfillProgress> {
  return {
    checkpointsTopic: derivedNames(config).checkpointsTopic,
    group: backfillGroup(config, run),
    key: (p) => `backfill:${p.run}`,
    encode: encodeProgress,
    decode: decodeProgress,
    offset: totalRows,
  };
}

/**
 * One transactional id per run, so a resumed run fences the killed one and Kafka aborts
 * whatever it left open. The partitioner is capture's, so a read and the changes of the
 * same row share a partition and the sinks see them in the order Kafka holds them.
 */
export function backfillProducer(config: Config, run: string, logger: Logger): BackfillProducer {
  return nativeCheckpointedProducer(config.kafka, logger, {
    transactionalId: backfillTransactionalId(config, run),
    changesTopic: derivedNames(config).changesTopic,
    store: progressStore(config, run),
    transactionTimeoutMs: config.kafka.transactionTimeoutMs,
  });
}

/** A run's last committed progress; null if it never committed a chunk. */
export async function readProgress(admin: OffsetAdmin, config: Config, run: string): Promise<BackfillProgress | null> {
  return readCheckpoint(admin, progressStore(config, run));
}

/** Every run of this pipeline that committed at least one chunk, newest first. */
export async function listRuns(admin: Admin, config: Config): Promise<BackfillProgress[]> {
  const prefix = backfillGroupPrefix(config);
  const { groups } = await admin.listGroups();
  const runs: BackfillProgress[] = [];
  for (const g of groups) {
    if (!g.groupId.startsWith(prefix)) continue;
    const progress = await readProgress(admin, config, g.groupId.slice(prefix.length)).catch(() => null);
    if (progress) runs.push(progress);
  }
  return runs.sort((a, b) => (a.started_at < b.started_at ? 1 : a.started_at > b.started_at ? -1 : 0));
}
