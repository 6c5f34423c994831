import type { Kafka } from 'kafkajs';

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string;
  value: string;
}

/**
 * Reads a topic from the beginning under read_committed until `enough(seen)` holds and no
 * record has arrived for `quietMs` (so duplicates behind the last expected record are seen
 * too), or until `timeoutMs`. For tests: it keeps everything it reads.
 */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  options: { enough: (records: ReadRecord[]) => boolean; quietMs?: number; timeoutMs?: number },
): Promise<ReadRecord[]> {
  const records: ReadRecord[] = [];
  const consumer = kafka.consumer({ groupId: `reader-${Date.now()}-${Math.random().toString(36).slice(2)}`, readUncommitted: false, maxBytes: 50 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let lastAt = Date.now();
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        records.push({ partition: batch.partition, offset: m.offset, key: m.key?.toString() ?? '', value: m.value?.toString() ?? '' });
      }
      lastAt = Date.now();
    },
  });
  const started = Date.now();
  const quiet = options.quietMs ?? 3000;
  const timeout = options.timeoutMs ?? 300_000;
  while (!(options.enough(records) && Date.now() - lastAt >= quiet) && Date.now() - started < timeout) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await consumer.disconnect();
  return records;
}
