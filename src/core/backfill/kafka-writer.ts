import type { Admin, Kafka, Producer, Transaction } from 'kafkajs';
import { derivedNames } from '../config/names.js';
import type { Config } from '../config/types.js';
import { FastDefaultPartitioner } from '../capture/partitioner.js';
import type { OutgoingRecord } from '../capture/kafka-writer.js';
import { retryConcurrentTransactions } from '../kafka/retry.js';
import { decodeProgress, encodeProgress, totalRows, type BackfillProgress } from './progress.js';

/** Kafka's default message.max.bytes is 1 MiB per record batch; kafkajs sends one batch per partition per request. */
const MAX_SEND_BYTES = 900 * 1024;

export const backfillTransactionalId = (config: Config, run: string): string => `streamctl-backfill-${config.pipeline.id}-${run}`;
export const backfillGroupPrefix = (config: Config): string => `streamctl-${config.pipeline.id}-backfill-`;
export const backfillGroup = (config: Config, run: string): string => `${backfillGroupPrefix(config)}${run}`;

/**
 * The Kafka side of a backfill run: one transactional id per run, so a resumed run fences
 * the killed one and Kafka aborts whatever it left open; one transaction per chunk, with
 * the run's progress in it (see progress.ts). A chunk's records are sent while its rows
 * are still being read, so memory holds at most about one request's worth of them.
 *
 * The partitioner is capture's, so a read and the changes of the same row share a
 * partition and the sinks see them in the order Kafka holds them.
 */
export class BackfillKafkaWriter {
  private producer: Producer | null = null;
  private readonly names;

  constructor(
    private readonly kafka: Kafka,
    private readonly config: Config,
    readonly run: string,
  ) {
    this.names = derivedNames(config);
  }

  async connect(): Promise<void> {
    this.producer = this.kafka.producer({
      transactionalId: backfillTransactionalId(this.config, this.run),
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.config.kafka.transactionTimeoutMs,
      createPartitioner: FastDefaultPartitioner,
      // See CaptureKafkaWriter: a short first retry for CONCURRENT_TRANSACTIONS after each commit.
      retry: { initialRetryTime: 5, maxRetryTime: this.config.kafka.retry.maxDelayMs, retries: Number.MAX_SAFE_INTEGER },
    });
    await this.producer.connect();
  }

  async disconnect(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
    this.producer = null;
  }

  async beginChunk(): Promise<ChunkTransaction> {
    if (!this.producer) throw new Error('backfill writer is not connected');
    return new ChunkTransaction(await this.producer.transaction(), this.names.changesTopic, this.names.checkpointsTopic, backfillGroup(this.config, this.run));
  }
}

export class ChunkTransaction {
  private pending: Promise<unknown> = Promise.resolve();
  private buffer: OutgoingRecord[] = [];
  private bufferBytes = 0;
  private failed: unknown = null;

  constructor(
    private readonly tx: Transaction,
    private readonly changesTopic: string,
    private readonly checkpointsTopic: string,
    private readonly group: string,
  ) {}

  /** Queues a record; resolves once the record before the current buffer is sent (backpressure). */
  async add(record: OutgoingRecord): Promise<void> {
    if (this.bufferBytes + record.key.length + record.value.length > MAX_SEND_BYTES && this.buffer.length > 0) await this.flush();
    this.buffer.push(record);
    this.bufferBytes += record.key.length + record.value.length;
  }

  /** Sends the buffer once the previous send is done: one request in flight while the next fills. */
  private async flush(): Promise<void> {
    const messages = this.buffer;
    this.buffer = [];
    this.bufferBytes = 0;
    await this.pending;
    if (this.failed) throw this.failed;
    this.pending = this.tx.send({ topic: this.changesTopic, messages, acks: -1 }).catch((err: unknown) => {
      this.failed = err;
    });
  }

  async commit(progress: BackfillProgress): Promise<void> {
    try {
      if (this.buffer.length > 0) await this.flush();
      await this.pending;
      if (this.failed) throw this.failed;
      const text = encodeProgress(progress);
      await this.tx.send({ topic: this.checkpointsTopic, messages: [{ key: `backfill:${progress.run}`, value: text }], acks: -1 });
      await retryConcurrentTransactions(() =>
        this.tx.sendOffsets({
          consumerGroupId: this.group,
          topics: [{ topic: this.checkpointsTopic, partitions: [{ partition: 0, offset: String(totalRows(progress)), metadata: text } as never] }],
        }),
      );
      await this.tx.commit();
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  async abort(): Promise<void> {
    await this.pending.catch(() => {});
    await this.tx.abort().catch(() => {});
  }
}

/** A run's last committed progress; null if it never committed a chunk. */
export async function readProgress(admin: Admin, config: Config, run: string): Promise<BackfillProgress | null> {
  const topic = derivedNames(config).checkpointsTopic;
  if (!(await admin.listTopics()).includes(topic)) return null;
  const offsets = await admin.fetchOffsets({ groupId: backfillGroup(config, run), topics: [topic] });
  const partition = offsets[0]?.partitions.find((p) => p.partition === 0);
  if (!partition || partition.offset === '-1') return null;
  return decodeProgress(partition.metadata);
}

/** Every run of this pipeline that committed at least one chunk, newest first. */
export async function listRuns(admin: Admin, config: Config): Promise<BackfillProgress[]> {
  const prefix = backfillGroupPrefix(config);
  const { groups } = await admin.listGroups();
  const runs: BackfillProgress[] = [];
  for (const g of groups) {
    if (!g.groupId.startsWith(prefix)) continue;
    const progress = await readProgress(admin, config, g.groupId.slice(prefix.length)).catch(() => null);
    if (progress) runs.push(progress);
  }
  return runs.sort((a, b) => (a.started_at < b.started_at ? 1 : a.started_at > b.started_at ? -1 : 0));
}
