import { idempotentProducer, type Kafka, type Producer } from '../clients/rdkafka.js';
import type { SinkName } from '../sinks/contract.js';

/**
 * The dead-letter topic. Each record is the original event as it was read from the
 * changes topic (not the enriched one, so a replay goes through enrichment again), with
 * headers that say which sink gave up on it, why, after how many attempts, and where it
 * came from. Written before the offsets that pass it are committed, so a crash can at
 * worst write a dead letter twice (replay-dlq dedupes by event id and sink), never lose one.
 */
export interface DeadLetter {
  sink: SinkName;
  eventId: string;
  key: string;
  /** The record's value as read from Kafka. */
  value: string;
  errorClass: string;
  message: string;
  attempts: number;
  firstFailureAt: string;
  lastFailureAt: string;
  source: { topic: string; partition: number; offset: string };
}

export const DLQ_HEADERS = {
  sink: 'streamctl-sink',
  eventId: 'streamctl-event-id',
  errorClass: 'streamctl-error-class',
  message: 'streamctl-error-message',
  attempts: 'streamctl-attempts',
  firstFailure: 'streamctl-first-failure-at',
  lastFailure: 'streamctl-last-failure-at',
  sourceTopic: 'streamctl-source-topic',
  sourcePartition: 'streamctl-source-partition',
  sourceOffset: 'streamctl-source-offset',
} as const;

export function dlqHeaders(d: DeadLetter): Record<string, string> {
  return {
    [DLQ_HEADERS.sink]: d.sink,
    [DLQ_HEADERS.eventId]: d.eventId,
    [DLQ_HEADERS.errorClass]: d.errorClass,
    [DLQ_HEADERS.message]: d.message.slice(0, 1000),
    [DLQ_HEADERS.attempts]: String(d.attempts),
    [DLQ_HEADERS.firstFailure]: d.firstFailureAt,
    [DLQ_HEADERS.lastFailure]: d.lastFailureAt,
    [DLQ_HEADERS.sourceTopic]: d.source.topic,
    [DLQ_HEADERS.sourcePartition]: String(d.source.partition),
    [DLQ_HEADERS.sourceOffset]: d.source.offset,
  };
}

export class DlqWriter {
  private producer: Producer | null = null;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
  ) {}

  async connect(): Promise<void> {
    this.producer = idempotentProducer(this.kafka);
    await this.producer.connect();
  }

  async write(letters: DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    if (!this.producer) throw new Error('DLQ writer not connected');
    await this.producer.send({
      topic: this.topic,
      messages: letters.map((d) => ({ key: d.key, value: d.value, headers: dlqHeaders(d) })),
    });
  }

  async disconnect(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
    this.producer = null;
  }
}
