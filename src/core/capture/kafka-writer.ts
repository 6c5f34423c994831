import type { Config } from '../config/types.js';
import type { Logger } from '../logger.js';
import { derivedNames } from '../config/names.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from './checkpoint.js';
import { nativeCheckpointedProducer, readCheckpoint as readStoredCheckpoint, type CheckpointedProducer, type CheckpointStore, type OffsetAdmin } from '../kafka/checkpointed-producer.js';

export type { OutgoingRecord } from '../kafka/checkpointed-producer.js';

/** Capture's producer: changes and its checkpoint in each transaction (see CheckpointedProducer). */
export type CaptureProducer = CheckpointedProducer<Checkpoint>;

export const checkpointGroupOf = (config: Config): string => `streamctl-${config.pipeline.id}-capture-checkpoint`;

export function captureCheckpointStore(config: Config): CheckpointStore<Checkpoint> {
  return {
    checkpointsTopic: derivedNames(config).checkpointsTopic,
    group: checkpointGroupOf(config),
    key: (c) => `capture:${c.pipeline}`,
    encode: encodeCheckpoint,
    decode: decodeCheckpoint,
    offset: (c) => c.events_total,
  };
}

/**
 * One fixed transactional id per pipeline, so a new capturer fences an old one
 * (InitProducerId bumps the epoch and aborts what the old one left open).
 */
export function captureProducer(config: Config, logger: Logger): CaptureProducer {
  const names = derivedNames(config);
  return nativeCheckpointedProducer(config.kafka, logger, {
    transactionalId: names.transactionalId,
    changesTopic: names.changesTopic,
    store: captureCheckpointStore(config),
    transactionTimeoutMs: config.kafka.transactionTimeoutMs,
  });
}

/** The last committed capture checkpoint; exact once `captureProducer(...).connect()` has fenced any older capturer. */
export async function readCheckpoint(admin: OffsetAdmin, config: Config): Promise<Checkpoint | null> {
  return readStoredCheckpoint(admin, captureCheckpointStore(config));
}

/**
 * The events_total of the last capture checkpoint Kafka shows committed: the checkpoint group's
 * committed offset (0 when none). With the consumer's committed() (RestartSafeAdmin), a
 * read_committed fetch that waits while a transaction's offsets are pending.
 */
export async function shownEventsTotal(admin: Pick<OffsetAdmin, 'fetchOffsets'>, config: Config): Promise<number> {
  const store = captureCheckpointStore(config);
  const [topic] = await admin.fetchOffsets({ groupId: store.group, topics: [store.checkpointsTopic] });
  const partition = topic?.partitions.find((p) => p.partition === 0);
  return partition && partition.offset !== '-1' ? Number(partition.offset) : 0;
}
