import type { Admin, Kafka, Producer, Transaction } from 'kafkajs';
import { FastDefaultPartitioner } from './partitioner.js';
import { isFenced, retryConcurrentTransactions } from './retry.js';
import { TransactionStateMachine } from './transaction-state.js';

/** Key and value already UTF-8 encoded: kafkajs then copies them as they are (a string it measures twice and encodes). */
export interface OutgoingRecord {
  key: Buffer;
  value: Buffer;
  /** Kafka record headers (a backfill into some sinks only names them: delivery/targets.ts). */
  headers?: Record<string, string>;
}

/**
 * Where a producer's checkpoints live and how they read. The checkpoint is written twice
 * in every transaction: as a record on the compacted checkpoints topic (for people and
 * tools reading the topic) and as the transactional offset metadata of `group` on that
 * topic, which is what a restart reads back: a consumer cannot tell under read_committed
 * that it has reached the end of a partition (kafkajs hides the control records), an
 * offset fetch can, and it returns only committed offsets.
 */
export interface CheckpointStore<T> {
  checkpointsTopic: string;
  group: string;
  /** Record key on the compacted topic: only the latest per key is kept. */
  key(checkpoint: T): string;
  encode(checkpoint: T): string;
  /** null for no checkpoint; throws on a malformed one (never guess where to resume). */
  decode(text: string | null | undefined): T | null;
  /** The offset committed with the metadata: a count that only grows (status shows it). */
  offset(checkpoint: T): number;
}

export interface CheckpointedProducerOptions<T> {
  /** Fixed per pipeline (capture) or per run (backfill): a new producer fences the old one. */
  transactionalId: string;
  changesTopic: string;
  store: CheckpointStore<T>;
  transactionTimeoutMs: number;
  retryMaxDelayMs: number;
}

/** Kafka's default message.max.bytes is 1 MiB per record batch; kafkajs sends one batch per partition per request. */
const MAX_SEND_BYTES = 900 * 1024;

/**
 * The one transactional producer of streamctl, used by capture and backfill: every commit
 * carries records on the changes topic plus one checkpoint that covers them (see
 * `CheckpointStore`). The protocol rules are in `TransactionStateMachine`; this class only
 * drives the Kafka client, which is why the client can be swapped behind it.
 */
export class CheckpointedProducer<T> {
  private producer: Producer | null = null;
  private readonly machine = new TransactionStateMachine();

  constructor(
    private readonly kafka: Kafka,
    private readonly options: CheckpointedProducerOptions<T>,
  ) {}

  get state(): TransactionStateMachine['state'] {
    return this.machine.state;
  }

  /** Initialises the producer id: from here on, any older producer of this id is fenced and what it left open is aborted. */
  async connect(): Promise<void> {
    this.producer = this.kafka.producer({
      transactionalId: this.options.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.options.transactionTimeoutMs,
      // Partitions exactly as Partitioners.DefaultPartitioner does, faster (see partitioner.ts).
      createPartitioner: FastDefaultPartitioner,
      // The broker says CONCURRENT_TRANSACTIONS for a few ms after each commit; kafkajs'
      // default 300 ms first retry would cost that much per transaction.
      retry: { initialRetryTime: 5, maxRetryTime: this.options.retryMaxDelayMs, retries: Number.MAX_SAFE_INTEGER },
    });
    await this.producer.connect();
    this.machine.transitionTo('ready');
  }

  async disconnect(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
    this.producer = null;
    if (this.machine.state !== 'disconnected') this.machine.transitionTo('disconnected');
  }

  async begin(): Promise<CheckpointedTransaction<T>> {
    this.machine.guard('begin');
    const tx = await this.producer!.transaction();
    this.machine.transitionTo('open');
    return new CheckpointedTransaction(tx, this.machine, this.options);
  }

  /** One whole transaction: the records, then the checkpoint, then the commit. */
  async commitAll(records: readonly OutgoingRecord[], checkpoint: T): Promise<void> {
    const tx = await this.begin();
    try {
      for (const record of records) await tx.add(record);
    } catch (err) {
      await tx.abort();
      throw err;
    }
    await tx.commit(checkpoint);
  }
}

/**
 * One open transaction. Records are sent while the caller is still producing them, one
 * request in flight while the next fills, so memory holds about one request's worth.
 */
export class CheckpointedTransaction<T> {
  private pending: Promise<void> = Promise.resolve();
  private buffer: OutgoingRecord[] = [];
  private bufferBytes = 0;
  private failure: unknown = null;

  constructor(
    private readonly tx: Transaction,
    private readonly machine: TransactionStateMachine,
    private readonly options: CheckpointedProducerOptions<T>,
  ) {}

  /** Queues a record; waits only when a full request is ready and the previous one is still in flight (backpressure). */
  async add(record: OutgoingRecord): Promise<void> {
    this.machine.guard('send');
    const size = record.key.length + record.value.length;
    if (this.bufferBytes + size > MAX_SEND_BYTES && this.buffer.length > 0) await this.flush();
    this.buffer.push(record);
    this.bufferBytes += size;
  }

  private async flush(): Promise<void> {
    const messages = this.buffer;
    this.buffer = [];
    this.bufferBytes = 0;
    await this.pending;
    this.throwIfFailed();
    this.pending = this.tx.send({ topic: this.options.changesTopic, messages, acks: -1 }).then(
      () => {},
      (err: unknown) => {
        this.failure = err;
      },
    );
  }

  private throwIfFailed(): void {
    if (this.failure === null) return;
    if (this.machine.state === 'open') this.machine.transitionTo(isFenced(this.failure) ? 'fenced' : 'failed');
    throw this.failure;
  }

  /** Sends what is buffered, then the checkpoint (record and offset metadata), then commits. Aborts on any failure. */
  async commit(checkpoint: T): Promise<void> {
    const { store } = this.options;
    try {
      if (this.buffer.length > 0) await this.flush();
      await this.pending;
      this.throwIfFailed();
      this.machine.guard('checkpoint');
      const text = store.encode(checkpoint);
      await this.tx.send({ topic: store.checkpointsTopic, messages: [{ key: store.key(checkpoint), value: text }], acks: -1 });
      await retryConcurrentTransactions(() =>
        this.tx.sendOffsets({
          consumerGroupId: store.group,
          topics: [{ topic: store.checkpointsTopic, partitions: [{ partition: 0, offset: String(store.offset(checkpoint)), metadata: text } as never] }],
        }),
      );
      this.machine.transitionTo('checkpointed');
      this.machine.guard('commit');
      this.machine.transitionTo('committing');
      await this.tx.commit();
      this.machine.transitionTo('ready');
    } catch (err) {
      if (isFenced(err)) {
        this.machine.transitionTo('fenced');
        throw err;
      }
      await this.abort();
      throw err;
    }
  }

  async abort(): Promise<void> {
    if (this.machine.fenced || this.machine.state === 'ready' || this.machine.state === 'disconnected') return;
    this.machine.guard('abort');
    this.machine.transitionTo('aborting');
    await this.pending.catch(() => {});
    await this.tx.abort().catch(() => {});
    this.machine.transitionTo('ready');
  }
}

/**
 * The last committed checkpoint of `store`. Exact only once no transaction of its
 * producer is half-finished, which `CheckpointedProducer.connect` (InitProducerId) guarantees.
 */
export async function readCheckpoint<T>(admin: Admin, store: CheckpointStore<T>): Promise<T | null> {
  // No topic yet: nothing was ever committed (the offset fetch would error).
  if (!(await admin.listTopics()).includes(store.checkpointsTopic)) return null;
  const offsets = await admin.fetchOffsets({ groupId: store.group, topics: [store.checkpointsTopic] });
  const partition = offsets[0]?.partitions.find((p) => p.partition === 0);
  if (!partition || partition.offset === '-1') return null;
  return store.decode(partition.metadata);
}
