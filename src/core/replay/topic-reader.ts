import { BatchConsumer, type ConsumedRecord } from '../clients/batch-consumer.js';
import { endOffsets, nativeSettingsOf, type Kafka } from '../clients/rdkafka.js';

export interface ReadOptions {
  /** Kept for the callers' naming; the read joins no group and commits nothing. */
  groupPrefix: string;
  /** Stop early (SIGINT): the read ends after the batch in hand. */
  signal?: AbortSignal;
}

/**
 * Reads a topic from the beginning, read_committed, up to the end it had when the read
 * began, handing over one fetched batch at a time and waiting for the handler before the
 * next one: memory holds one batch, whatever the topic's size. Records written after the
 * start (a replay putting letters back) are not read by this pass. The partitions are
 * assigned directly (no consumer group to join, commit or delete afterwards).
 *
 * Returns false when stopped by the signal before the end.
 */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  options: ReadOptions,
  handle: (partition: number, messages: ConsumedRecord[], heartbeat: () => Promise<void>) => Promise<void>,
): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Array<{ partition: number; high: string; low: string }>;
  try {
    if (!(await admin.listTopics()).includes(topic)) return true;
    // The last stable offsets: where a read_committed consumer stops.
    ends = await endOffsets(admin, topic);
  } finally {
    await admin.disconnect().catch(() => {});
  }
  const remaining = new Map<number, bigint>();
  for (const p of ends) if (BigInt(p.high) > BigInt(p.low)) remaining.set(p.partition, BigInt(p.high) - 1n);
  if (remaining.size === 0) return true;

  let finish: (() => void) | undefined;
  let fail: ((e: Error) => void) | undefined;
  const finished = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  let failed = false;
  const { settings, logger } = nativeSettingsOf(kafka);
  const consumer: BatchConsumer = new BatchConsumer({
    settings,
    topic,
    mode: { assign: ends.filter((p) => remaining.has(p.partition)).map((p) => ({ partition: p.partition, offset: p.low })) },
    maxRecordsPerRound: 2000,
    maxPartitionFetchBytes: 1024 * 1024,
    maxFetchBytes: 4 * 1024 * 1024,
    concurrency: 1,
    logger,
    eachBatch: async (partition, messages) => {
      if (failed || options.signal?.aborted || !remaining.has(partition)) return;
      const end = remaining.get(partition)!;
      const wanted = messages.filter((m) => BigInt(m.offset) <= end);
      if (wanted.length > 0) {
        try {
          await handle(partition, wanted, async () => {});
        } catch (err) {
          // The handler's failure ends the read (not read again).
          failed = true;
          fail?.(err as Error);
          return;
        }
      }
      reached(partition, BigInt(messages[messages.length - 1]!.offset));
    },
    // Transaction markers or aborted records at the end never reach a batch, but move the position.
    onIdle: (partition, position) => reached(partition, BigInt(position) - 1n),
    onFatal: (err) => fail?.(err),
  });
  const reached = (partition: number, last: bigint) => {
    const end = remaining.get(partition);
    if (end !== undefined && last >= end) {
      remaining.delete(partition);
      consumer.pause([partition]);
    }
    if (remaining.size === 0) finish?.();
  };
  const onAbort = () => finish?.();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await consumer.start();
    await finished;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await consumer.stop();
  }
  return !options.signal?.aborted;
}
