import { BatchConsumer } from '../../src/core/clients/batch-consumer.js';
import { endOffsets, nativeSettingsOf, type Kafka } from '../../src/core/clients/rdkafka.js';

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string;
  value: string;
  headers: Record<string, string>;
}

/**
 * Reads a topic from the beginning under read_committed until `enough(seen)` holds and no
 * record has arrived for `quietMs` (so duplicates behind the last expected record are seen
 * too), or until `timeoutMs`. For tests: it keeps everything it reads. Every partition is
 * assigned directly (no consumer group is left behind).
 */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  options: { enough: (records: ReadRecord[]) => boolean; quietMs?: number; timeoutMs?: number },
): Promise<ReadRecord[]> {
  const records: ReadRecord[] = [];
  const admin = kafka.admin();
  await admin.connect();
  const partitions = await endOffsets(admin, topic).finally(() => admin.disconnect());
  let lastAt = Date.now();
  const { settings, logger } = nativeSettingsOf(kafka);
  const consumer = new BatchConsumer({
    settings,
    topic,
    mode: { assign: partitions.map((p) => ({ partition: p.partition, offset: p.low })) },
    maxRecordsPerRound: 10_000,
    maxPartitionFetchBytes: 8 * 1024 * 1024,
    maxFetchBytes: 50 * 1024 * 1024,
    concurrency: partitions.length,
    logger,
    eachBatch: async (partition, messages) => {
      for (const m of messages) {
        const headers = Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, v?.toString() ?? '']));
        records.push({ partition, offset: m.offset, key: m.key?.toString() ?? '', value: m.value?.toString() ?? '', headers });
      }
      lastAt = Date.now();
    },
  });
  await consumer.start();
  const started = Date.now();
  const quiet = options.quietMs ?? 3000;
  const timeout = options.timeoutMs ?? 300_000;
  while (!(options.enough(records) && Date.now() - lastAt >= quiet) && Date.now() - started < timeout) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await consumer.stop();
  return records;
}
