import type { CheckpointedProducer, OutgoingRecord } from '../../src/core/kafka/checkpointed-producer.js';

/**
 * One whole transaction: begin, the records, then the checkpoint and the commit; aborted
 * when a record is refused. What the producer's tests write with (capture and backfill
 * produce into a transaction as they read: Capturer.loop, backfill/chunk-pipeline.ts).
 */
export async function commitAll<T>(producer: CheckpointedProducer<T>, records: readonly OutgoingRecord[], checkpoint: T): Promise<void> {
  const tx = await producer.begin();
  try {
    for (const record of records) {
      const waiting = tx.add(record);
      if (waiting) await waiting;
    }
  } catch (err) {
    await tx.abort();
    throw err;
  }
  await tx.commit(checkpoint);
}
