import { headerText, type Kafka } from '../clients/rdkafka.js';
import { DLQ_HEADERS } from '../delivery/dlq.js';
import type { SinkName } from '../sinks/contract.js';
import { readToEnd } from '../replay/topic-reader.js';

/** Dead letters per sink (the sink header of each record), read to the topic's end. */
export async function countDeadLetters(kafka: Kafka, topic: string, sinks: SinkName[]): Promise<Record<string, number>> {
  const out: Record<string, number> = Object.fromEntries(sinks.map((s) => [s, 0]));
  await readToEnd(kafka, topic, { groupPrefix: `${topic}-stress-count` }, async (_partition, messages) => {
    for (const m of messages) {
      const sink = headerText(m.headers[DLQ_HEADERS.sink]);
      if (sink && sink in out) out[sink]!++;
    }
  });
  return out;
}
