import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';

export interface ReadOptions {
  /** Consumer group prefix; the group is throwaway (nothing is committed) and deleted after. */
  groupPrefix: string;
  /** Stop early (SIGINT): the read ends after the batch in hand. */
  signal?: AbortSignal;
}

/**
 * Reads a topic from the beginning, read_committed, up to the end it had when the read
 * began, handing over one fetched batch at a time and waiting for the handler before the
 * next one: memory holds one batch, whatever the topic's size. Records written after the
 * start (a replay putting letters back) are not read by this pass.
 *
 * Returns false when stopped by the signal before the end.
 */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  options: ReadOptions,
  handle: (partition: number, messages: KafkaMessage[], heartbeat: () => Promise<void>) => Promise<void>,
): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `${options.groupPrefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  try {
    if (!(await admin.listTopics()).includes(topic)) return true;
    // Under read_committed a consumer stops at the last stable offset; the admin's
    // ListOffsets is read_committed too, so these are ends the consumer reaches.
    const ends = await admin.fetchTopicOffsets(topic);
    const remaining = new Map<number, bigint>();
    for (const p of ends) if (BigInt(p.high) > BigInt(p.low)) remaining.set(p.partition, BigInt(p.high) - 1n);
    if (remaining.size === 0) return true;

    const consumer = kafka.consumer({ groupId, readUncommitted: false, maxBytesPerPartition: 1024 * 1024, maxBytes: 4 * 1024 * 1024 });
    await consumer.connect();
    let finish: (() => void) | undefined;
    let fail: ((e: Error) => void) | undefined;
    const finished = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    const reached = (partition: number, last: string) => {
      const end = remaining.get(partition);
      if (end !== undefined && BigInt(last) >= end) {
        remaining.delete(partition);
        consumer.pause([{ topic, partitions: [partition] }]);
      }
      if (remaining.size === 0) finish?.();
    };
    // A batch of only transaction markers or aborted records never reaches eachBatch, but
    // it moves the position: seen here.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic === topic) reached(payload.partition, payload.lastOffset);
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) fail?.(payload.error);
    });
    let failed = false;
    const onAbort = () => finish?.();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async ({ batch, heartbeat, isRunning, isStale }) => {
          if (options.signal?.aborted || !remaining.has(batch.partition)) return;
          const end = remaining.get(batch.partition)!;
          const wanted = batch.messages.filter((m) => BigInt(m.offset) <= end);
          if (wanted.length > 0 && isRunning() && !isStale()) {
            try {
              await handle(batch.partition, wanted, heartbeat);
            } catch (err) {
              // The handler's failure ends the read (kafkajs would retry the batch forever).
              failed = true;
              fail?.(err as Error);
              return;
            }
          }
          if (failed) return;
          reached(batch.partition, batch.lastOffset());
        },
      });
      await finished;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      await consumer.disconnect().catch(() => {});
    }
    return !options.signal?.aborted;
  } finally {
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}
