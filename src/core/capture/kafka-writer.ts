import type { Kafka, Producer, Admin } from 'kafkajs';
import type { Config } from '../config/types.js';
import { derivedNames } from '../config/names.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from './checkpoint.js';
import { retryConcurrentTransactions } from '../kafka/retry.js';
import { FastDefaultPartitioner } from './partitioner.js';

/** Key and value already UTF-8 encoded: kafkajs then copies them as they are (a string it measures twice and encodes). */
export interface OutgoingRecord {
  key: Buffer;
  value: Buffer;
}

/** Kafka's default message.max.bytes is 1 MiB per record batch; kafkajs sends one batch per partition per request. */
const MAX_SEND_BYTES = 900 * 1024;

/**
 * The transactional side of capture: one fixed transactional id per pipeline, so a new
 * capturer fences an old one (InitProducerId bumps the epoch and aborts what the old one
 * left open). Every commit carries the changes, a checkpoint record on the compacted
 * checkpoints topic, and the same checkpoint as transactional offset metadata, which
 * `readCheckpoint` reads back exactly: a consumer cannot tell under read_committed that it
 * has reached the end of a partition (kafkajs hides the control records), an offset fetch can.
 */
export class CaptureKafkaWriter {
  private producer: Producer | null = null;
  private readonly names;
  private readonly checkpointGroup: string;

  constructor(
    private readonly kafka: Kafka,
    private readonly config: Config,
  ) {
    this.names = derivedNames(config);
    this.checkpointGroup = checkpointGroupOf(config);
  }

  /** Connecting initialises the producer id: from here on, any older capturer is fenced. */
  async connect(): Promise<void> {
    const maxDelay = this.config.kafka.retry.maxDelayMs;
    this.producer = this.kafka.producer({
      transactionalId: this.names.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.config.kafka.transactionTimeoutMs,
      // Partitions exactly as Partitioners.DefaultPartitioner does, faster (see partitioner.ts).
      createPartitioner: FastDefaultPartitioner,
      // The broker says CONCURRENT_TRANSACTIONS for a few ms after each commit; kafkajs'
      // default 300 ms first retry would cost that much per transaction.
      retry: { initialRetryTime: 5, maxRetryTime: maxDelay, retries: Number.MAX_SAFE_INTEGER },
    });
    await this.producer.connect();
  }

  async disconnect(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
    this.producer = null;
  }

  async commit(records: OutgoingRecord[], checkpoint: Checkpoint): Promise<void> {
    const producer = this.producer;
    if (!producer) throw new Error('capture writer is not connected');
    const tx = await producer.transaction();
    try {
      let chunk: OutgoingRecord[] = [];
      let chunkBytes = 0;
      for (const r of records) {
        if (chunkBytes + r.value.length > MAX_SEND_BYTES && chunk.length > 0) {
          await tx.send({ topic: this.names.changesTopic, messages: chunk, acks: -1 });
          chunk = [];
          chunkBytes = 0;
        }
        chunk.push(r);
        chunkBytes += r.value.length;
      }
      if (chunk.length > 0) await tx.send({ topic: this.names.changesTopic, messages: chunk, acks: -1 });
      const text = encodeCheckpoint(checkpoint);
      await tx.send({ topic: this.names.checkpointsTopic, messages: [{ key: `capture:${checkpoint.pipeline}`, value: text }], acks: -1 });
      await retryConcurrentTransactions(() =>
        tx.sendOffsets({
          consumerGroupId: this.checkpointGroup,
          topics: [{ topic: this.names.checkpointsTopic, partitions: [{ partition: 0, offset: String(checkpoint.events_total), metadata: text } as never] }],
        }),
      );
      await tx.commit();
    } catch (err) {
      await tx.abort().catch(() => {});
      throw err;
    }
  }
}

export const checkpointGroupOf = (config: Config): string => `streamctl-${config.pipeline.id}-capture-checkpoint`;

/**
 * The last committed checkpoint. Exact only once no transaction of this pipeline is
 * half-finished, which `CaptureKafkaWriter.connect` (InitProducerId) guarantees.
 */
export async function readCheckpoint(admin: Admin, config: Config): Promise<Checkpoint | null> {
  const topic = derivedNames(config).checkpointsTopic;
  // No topic yet: this pipeline never captured anything (the offset fetch would error).
  if (!(await admin.listTopics()).includes(topic)) return null;
  const offsets = await admin.fetchOffsets({ groupId: checkpointGroupOf(config), topics: [topic] });
  const partition = offsets[0]?.partitions.find((p) => p.partition === 0);
  if (!partition || partition.offset === '-1') return null;
  return decodeCheckpoint(partition.metadata);
}
