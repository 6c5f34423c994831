import type { KafkaConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import { explainFenced, isFenced } from './retry.js';
import { TransactionStateMachine } from './transaction-state.js';
import { NativeTransactionalClient, type TransactionalClient } from './transactional-client.js';

/** Value already UTF-8 encoded, key as bytes or text: the client copies them into librdkafka's queue as they are. */
export interface OutgoingRecord {
  key: Buffer | string;
  value: Buffer | string;
  /** Kafka record headers (a backfill into some sinks only names them: event/targets.ts). */
  headers?: Record<string, string>;
}

/**
 * Where a producer's checkpoints live and how they read. The checkpoint is written twice
 * in every transaction: as a record on the compacted checkpoints topic (for people and
 * tools reading the topic) and as the transactional offset metadata of `group` on that
 * topic, which is what a restart reads back: a consumer cannot tell under read_committed
 * that it has reached the end of a partition (the control records are hidden from it), an
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
}

/**
 * The one transactional producer of streamctl, used by capture and backfill: every commit
 * carries records on the changes topic plus one checkpoint that covers them (see
 * `CheckpointStore`). The protocol rules are in `TransactionStateMachine`; this class drives
 * a `TransactionalClient` (librdkafka's native API, `transactional-client.ts`) through them.
 */
export class CheckpointedProducer<T> {
  private readonly machine = new TransactionStateMachine();

  constructor(
    private readonly client: TransactionalClient,
    private readonly options: Pick<CheckpointedProducerOptions<T>, 'changesTopic' | 'store'> & Partial<Pick<CheckpointedProducerOptions<T>, 'transactionTimeoutMs'>>,
  ) {}

  get state(): TransactionStateMachine['state'] {
    return this.machine.state;
  }

  /** Initialises the producer id: from here on, any older producer of this id is fenced and what it left open is aborted. */
  async connect(): Promise<void> {
    try {
      await this.client.connect();
    } catch (err) {
      if (isFenced(err)) this.machine.transitionTo('fenced');
      throw err;
    }
    this.machine.transitionTo('ready');
  }

  async disconnect(): Promise<void> {
    await this.client.disconnect().catch(() => {});
    if (this.machine.state !== 'disconnected') this.machine.transitionTo('disconnected');
  }

  async begin(): Promise<CheckpointedTransaction<T>> {
    this.machine.guard('begin');
    try {
      await this.client.begin();
    } catch (err) {
      if (isFenced(err)) this.machine.transitionTo('fenced');
      throw err;
    }
    this.machine.transitionTo('open');
    return new CheckpointedTransaction(this.client, this.machine, this.options);
  }
}

/**
 * One open transaction. Records go straight into librdkafka's queue, which batches them per
 * partition and sends while the caller is still producing; a full queue makes `add` wait
 * (memory holds at most the queue's bound).
 */
export class CheckpointedTransaction<T> {
  private readonly openedAt = Date.now();

  constructor(
    private readonly client: TransactionalClient,
    private readonly machine: TransactionStateMachine,
    private readonly options: Pick<CheckpointedProducerOptions<T>, 'changesTopic' | 'store'> & Partial<Pick<CheckpointedProducerOptions<T>, 'transactionTimeoutMs'>>,
  ) {}

  /** What is thrown: a fencing of this transaction once it is past its timeout is Kafka's abort of it, not another process (retry.ts). */
  private explain(err: unknown): unknown {
    return explainFenced(err, Date.now() - this.openedAt, this.options.transactionTimeoutMs);
  }

  /** Returns a promise only when the record has to wait for room in the client's queue (see TransactionalClient.produce). */
  add(record: OutgoingRecord): Promise<void> | void {
    this.machine.guard('send');
    let waiting: Promise<void> | void;
    try {
      waiting = this.client.produce(this.options.changesTopic, record.key, record.value, record.headers);
    } catch (err) {
      this.failed(err);
      throw this.explain(err);
    }
    if (!waiting) return;
    return waiting.catch((err: unknown) => {
      this.failed(err);
      throw this.explain(err);
    });
  }

  private failed(err: unknown): void {
    if (this.machine.state === 'open') this.machine.transitionTo(isFenced(err) ? 'fenced' : 'failed');
  }

  /**
   * The checkpoint record, then every record acknowledged (a failed delivery aborts: the
   * checkpoint must never cover a record Kafka does not hold), then the checkpoint as offset
   * metadata, then the commit. Aborts on any failure.
   */
  async commit(checkpoint: T): Promise<void> {
    const { store } = this.options;
    try {
      this.machine.guard('checkpoint');
      const text = store.encode(checkpoint);
      try {
        await this.client.produce(store.checkpointsTopic, store.key(checkpoint), text);
        await this.client.flush();
      } catch (err) {
        this.failed(err);
        throw err;
      }
      await this.client.sendOffsets(store.group, store.checkpointsTopic, store.offset(checkpoint), text);
      this.machine.transitionTo('checkpointed');
      this.machine.guard('commit');
      this.machine.transitionTo('committing');
      await this.client.commit();
      this.machine.transitionTo('ready');
    } catch (err) {
      if (isFenced(err)) {
        if (!this.machine.fenced) this.machine.transitionTo('fenced');
        throw this.explain(err);
      }
      await this.abort();
      throw err;
    }
  }

  async abort(): Promise<void> {
    if (this.machine.fenced || this.machine.state === 'ready' || this.machine.state === 'disconnected') return;
    this.machine.guard('abort');
    this.machine.transitionTo('aborting');
    try {
      await this.client.abort();
    } catch (err) {
      // The abort is where librdkafka tells a fenced producer so, when the failure that led
      // here was only its side effect (records purged from the queue): fenced is final.
      if (isFenced(err)) {
        this.machine.transitionTo('fenced');
        throw this.explain(err);
      }
      // Anything else: the broker aborts the transaction when it times out, or when this id is initialised again.
    }
    this.machine.transitionTo('ready');
  }
}

/** A checkpointed producer on librdkafka's native API. */
export function nativeCheckpointedProducer<T>(kafka: KafkaConfig, logger: Logger, options: CheckpointedProducerOptions<T>): CheckpointedProducer<T> {
  const client = new NativeTransactionalClient(kafka, logger, { transactionalId: options.transactionalId, transactionTimeoutMs: options.transactionTimeoutMs });
  return new CheckpointedProducer(client, options);
}

/**
 * The checkpoint text of committed offset metadata. librdkafka's native writer sends the
 * metadata with a trailing NUL (its C string terminator), which an offset fetch by kafkajs
 * (or any reader that takes the bytes as they are) returns; checkpoints written by kafkajs
 * (before the move) have none. A checkpoint is JSON and never ends in NUL, so exactly one
 * trailing NUL is dropped and both read the same.
 */
export function checkpointText(metadata: string | null | undefined): string | null | undefined {
  if (typeof metadata !== 'string' || !metadata.endsWith('\0')) return metadata;
  return metadata.slice(0, -1);
}

/** The admin calls `readCheckpoint` needs: kafkajs' Admin and the KafkaJS-compatible admin of `@confluentinc/kafka-javascript` both have them. */
export interface OffsetAdmin {
  listTopics(): Promise<string[]>;
  fetchOffsets(options: { groupId: string; topics: string[] }): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string; metadata?: string | null }> }>>;
}

/**
 * The last committed checkpoint of `store`. Exact only once no transaction of its
 * producer is half-finished, which `CheckpointedProducer.connect` (InitProducerId) guarantees.
 */
export async function readCheckpoint<T>(admin: OffsetAdmin, store: CheckpointStore<T>): Promise<T | null> {
  // No topic yet: nothing was ever committed (the offset fetch would error).
  if (!(await admin.listTopics()).includes(store.checkpointsTopic)) return null;
  let offsets: Awaited<ReturnType<OffsetAdmin['fetchOffsets']>>;
  try {
    offsets = await admin.fetchOffsets({ groupId: store.group, topics: [store.checkpointsTopic] });
  } catch (err) {
    // The broker listed the topics a moment ago: it is there, and holds this read back.
    if (/timed out/i.test((err as Error).message ?? '')) throw new CheckpointUnreadableError(store.group, err);
    throw err;
  }
  const partition = offsets[0]?.partitions.find((p) => p.partition === 0);
  if (!partition || partition.offset === '-1') return null;
  return store.decode(checkpointText(partition.metadata));
}

/**
 * The checkpoint's offset read did not finish although the broker answers (it had just listed
 * the topics). A read_committed offset fetch waits while a transaction that committed offsets
 * to the group is open, and the producer's InitProducerId has just ended any transaction of
 * ours that the coordinator knows. So a read that keeps failing is a transaction the broker
 * itself never finished (a "hanging transaction"): seen here after a Kafka broker was stopped
 * with SIGTERM during capture's first transactions (kafka-transactions describe-producers
 * showed the checkpoints partition with a transaction of producer epoch 0 open, while the
 * coordinator had the id at epoch 30 and Empty). Only an operator can end one: the message says
 * how. Capture retries it without calling it an outage (the broker answers): capturer.ts.
 */
export class CheckpointUnreadableError extends Error {
  override readonly name = 'CheckpointUnreadableError';
  constructor(
    readonly group: string,
    cause: unknown,
  ) {
    super(
      `the checkpoint of consumer group ${group} cannot be read: the broker answers, but holds back the group's committed offsets, as it does while a transaction that wrote them is open. ` +
        'If this lasts past the transaction timeout, the broker has a transaction it never finished: find it with kafka-transactions.sh --bootstrap-server <broker> find-hanging --broker-id <id>, ' +
        'abort it with kafka-transactions.sh ... abort --topic <topic> --partition <p> --start-offset <offset> (README: "A Kafka transaction that never ends")',
      { cause },
    );
  }
}
