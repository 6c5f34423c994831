import { endOffsets, type OffsetsAdmin } from '../clients/rdkafka.js';
import type { OpenLetters } from '../replay/open-letters.js';
import { derivedNames } from '../config/names.js';
import type { Config } from '../config/types.js';
import type { SinkName } from '../sinks/contract.js';
import { enabledSinkNames } from '../sinks/registry.js';

export interface DeliveryLag {
  /** Events in the changes topic each enabled sink has not acknowledged yet. */
  lag: Partial<Record<SinkName, number>>;
  /** Open dead letters (not resolved by replay-dlq) when counted; else records in the dead-letter topic. */
  dlq_depth: number;
  /** Offsets in the dead-letter topic: every copy, resolved or not, and replay-dlq's transaction markers. */
  dlq_records?: number;
  /** Open dead letters per sink, when counted. */
  dlq_open?: OpenLetters['bySink'];
}

/**
 * Consumer lag per sink from Kafka's own bookkeeping: end offsets of the changes topic
 * minus each sink group's committed offsets (the runner commits past trailing
 * transaction markers, so a caught-up sink shows 0).
 */
export async function deliveryLag(admin: OffsetsAdmin, config: Config, openLetters?: (admin: OffsetsAdmin) => Promise<OpenLetters>): Promise<DeliveryLag> {
  const names = derivedNames(config);
  const topics = await admin.listTopics();
  const out: DeliveryLag = { lag: {}, dlq_depth: 0 };
  if (topics.includes(names.changesTopic)) {
    const ends = await endOffsets(admin, names.changesTopic);
    for (const sink of enabledSinkNames(config)) {
      const committed = await admin.fetchOffsets({ groupId: names.consumerGroup(sink), topics: [names.changesTopic] });
      const byPartition = new Map(committed[0]?.partitions.map((p) => [p.partition, BigInt(p.offset)]) ?? []);
      let lag = 0n;
      for (const end of ends) {
        const done = byPartition.get(end.partition) ?? -1n;
        lag += BigInt(end.high) - (done < 0n ? BigInt(end.low) : done);
      }
      out.lag[sink] = Number(lag);
    }
  }
  if (topics.includes(names.dlqTopic)) {
    const dlq = await endOffsets(admin, names.dlqTopic);
    out.dlq_depth = dlq.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
    if (openLetters) {
      // Resolved letters stay in the topic (it is a log); what counts is what is still open.
      // If they cannot be counted, the topic's size stands (an upper bound) rather than nothing.
      const open = await openLetters(admin).catch(() => null);
      out.dlq_records = out.dlq_depth;
      if (open) {
        out.dlq_depth = open.total;
        out.dlq_open = open.bySink;
      }
    }
  }
  return out;
}
