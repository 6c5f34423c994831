import type { Admin, Kafka } from 'kafkajs';
import { DLQ_HEADERS } from '../delivery/dlq.js';
import type { SinkName } from '../sinks/contract.js';

/** Dead letters per sink (the sink header of each record), read to the topic's end. */
export async function countDeadLetters(kafka: Kafka, admin: Admin, topic: string, sinks: SinkName[]): Promise<Record<string, number>> {
  const out: Record<string, number> = Object.fromEntries(sinks.map((s) => [s, 0]));
  if (!(await admin.listTopics()).includes(topic)) return out;
  const ends = await admin.fetchTopicOffsets(topic);
  const total = ends.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
  if (total === 0) return out;
  const groupId = `${topic}-stress-count-${Date.now()}`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false });
  const left = new Map(ends.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]));
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 30_000);
      void consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            const sink = m.headers?.[DLQ_HEADERS.sink]?.toString();
            if (sink && sink in out) out[sink]!++;
          }
          // Past the last record (transaction markers included): this partition is done.
          if (BigInt(batch.lastOffset()) + 1n >= (left.get(batch.partition) ?? 0n) - 1n) left.delete(batch.partition);
          if (left.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch(() => {});
  }
  return out;
}
