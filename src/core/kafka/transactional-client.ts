import type { KafkaConsumer as NativeConsumer, LibrdKafkaError, Producer as NativeProducer } from '@confluentinc/kafka-javascript';
import type { KafkaConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import { CODES, KafkaConsumer, Producer, forwardLogs, isNativeFenced, librdkafkaSettings, nativeCall } from '../clients/librdkafka.js';
import { TOPIC_HEADROOM_BYTES } from './topics.js';
import { sleep } from '../timeout.js';

/**
 * What `CheckpointedProducer` needs of a transactional Kafka client: the protocol's steps,
 * each a promise. The producer's rules live above this line (and are unit-tested against a
 * recording stand-in); what is below it only talks to librdkafka.
 */
export interface TransactionalClient {
  /** Connects and initialises the producer id: older producers of this transactional id are fenced, their open transaction aborted. */
  connect(): Promise<void>;
  begin(): Promise<void>;
  /**
   * Queues one record; waits (never drops) while librdkafka's queue is full. Returns a
   * promise only when it has to wait: a backfill queues millions, and a promise each was
   * measurable.
   */
  produce(topic: string, key: Buffer | string, value: Buffer | string, headers?: Record<string, string>): Promise<void> | void;
  /** Resolves once every record queued so far is acknowledged or failed; rejects with the first failed delivery seen. */
  flush(): Promise<void>;
  /** Commits `offset` + `metadata` for `group` on `topic`'s partition 0 within the open transaction. */
  sendOffsets(group: string, topic: string, offset: number, metadata: string): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  disconnect(): Promise<void>;
}

export interface NativeTransactionalOptions {
  transactionalId: string;
  transactionTimeoutMs: number;
  /** librdkafka settings on top of ours (tests: a tiny queue to exercise QUEUE_FULL). */
  extraSettings?: Record<string, string | number | boolean>;
}

/** How long one transactional call may take before it is reported as failed (then retried or aborted by the caller). */
const CALL_TIMEOUT_MS = 30_000;

/**
 * The transactional producer on librdkafka's native API (`@confluentinc/kafka-javascript`).
 * Not its KafkaJS-compatible layer: that one silently drops offset metadata, where capture
 * keeps its checkpoint, and it measured at less than half the native throughput.
 *
 * - Partitioning: `murmur2_random` is Java's and kafkajs' default for keyed records, so an
 *   existing changes topic keeps each row's partition (librdkafka's own default, consistent_random,
 *   would move them: per-key order would break across the upgrade).
 * - Delivery: librdkafka reports failed deliveries only (`delivery.report.only.error`): a
 *   report per record cost the JS thread an object and a key copy each (about 0.2 CPU s per
 *   100k records, measured). `flush` waits until librdkafka's queue is empty and fails with
 *   the first failure seen; the commit is what guarantees it, since librdkafka refuses to
 *   commit a transaction any record of which failed (an abortable error), so nothing is ever
 *   committed over a lost record.
 * - Offsets: `sendOffsetsToTransaction` takes a consumer for the group's metadata; a consumer
 *   that never subscribes serves (generation -1, as a standalone committer).
 * - Polling: librdkafka's background thread serves delivery reports, so a busy event loop
 *   never stalls the producer's queue.
 */
export class NativeTransactionalClient implements TransactionalClient {
  private readonly producer: NativeProducer;
  private offsetsConsumer: NativeConsumer | null = null;
  private offsetsGroup: string | null = null;
  private deliveryFailure: LibrdKafkaError | null = null;
  /** Set by librdkafka's fatal error event (fenced, or a broken idempotence state): this producer is finished. */
  private fatal: LibrdKafkaError | null = null;
  /** Headers as librdkafka takes them, for the last headers object seen (a run passes the same one for every record). */
  private headerCache: { headers: Record<string, string>; list: Array<Record<string, string>> } | null = null;

  constructor(
    private readonly config: KafkaConfig,
    private readonly logger: Logger,
    private readonly options: NativeTransactionalOptions,
  ) {
    const maxMessageBytes = config.maxRecordBytes + TOPIC_HEADROOM_BYTES;
    this.producer = new Producer({
      ...librdkafkaSettings(config),
      'transactional.id': options.transactionalId,
      'transaction.timeout.ms': options.transactionTimeoutMs,
      'enable.idempotence': true,
      partitioner: 'murmur2_random',
      dr_cb: true,
      'delivery.report.only.error': true,
      // A record up to kafka.maxRecordBytes (+ key and headers) must leave the client; the
      // topics are sized to take it (topics.ts).
      'message.max.bytes': maxMessageBytes,
      // The local queue bounds memory: librdkafka's default (1 GiB) would let RSS grow with
      // the backlog; this holds a few transactions' worth and always one largest record.
      'queue.buffering.max.kbytes': Math.max(32 * 1024, Math.ceil((2 * maxMessageBytes) / 1024)),
      'queue.buffering.max.messages': 100_000,
      'linger.ms': 5,
      ...options.extraSettings,
    } as never);
    forwardLogs(this.producer, logger);
    this.producer.on('event.error', (err) => {
      if (err.isFatal) this.fatal = err;
    });
    this.producer.on('delivery-report', (err) => {
      // A purge is never the cause: librdkafka purges the records of a transaction that is aborted or
      // cannot commit (whose own error the caller gets), and those of an abort may come in after it.
      if (err && !isPurge(err) && this.deliveryFailure === null) this.deliveryFailure = err;
    });
  }

  async connect(): Promise<void> {
    await nativeCall((done) => this.producer.connect({ timeout: CALL_TIMEOUT_MS }, (err) => done(err)));
    this.producer.setPollInBackground(true);
    await nativeCall((done) => this.producer.initTransactions(Math.max(CALL_TIMEOUT_MS, this.options.transactionTimeoutMs), done));
  }

  async begin(): Promise<void> {
    this.deliveryFailure = null;
    await nativeCall((done) => this.producer.beginTransaction(done)).catch((err) => this.rethrow(err));
  }

  produce(topic: string, key: Buffer | string, value: Buffer | string, headers?: Record<string, string>): Promise<void> | void {
    const headerList = headers ? this.headerList(headers) : undefined;
    const payload = Buffer.isBuffer(value) ? value : Buffer.from(value);
    if (this.tryProduce(topic, key, payload, headerList)) return;
    return this.produceWhenRoom(topic, key, payload, headerList);
  }

  /** false when librdkafka's queue is full; throws any other refusal. */
  private tryProduce(topic: string, key: Buffer | string, payload: Buffer, headerList: Array<Record<string, string>> | undefined): boolean {
    this.throwIfBroken();
    try {
      // librdkafka copies key and value (RK_MSG_COPY): the caller may reuse their memory at once.
      this.producer.produce(topic, null, payload, key, null, undefined, headerList);
      return true;
    } catch (err) {
      if ((err as LibrdKafkaError).code !== CODES.ERRORS.ERR__QUEUE_FULL) this.rethrow(err);
      return false;
    }
  }

  private async produceWhenRoom(topic: string, key: Buffer | string, payload: Buffer, headerList: Array<Record<string, string>> | undefined): Promise<void> {
    // The queue is full: librdkafka's threads are sending it; try again shortly (there is no report per record to wait on).
    do await sleep(QUEUE_FULL_RETRY_MS);
    while (!this.tryProduce(topic, key, payload, headerList));
  }

  /** librdkafka takes headers as a list of one-entry objects (a header name may repeat). */
  private headerList(headers: Record<string, string>): Array<Record<string, string>> {
    if (this.headerCache?.headers !== headers) this.headerCache = { headers, list: Object.entries(headers).map(([name, text]) => ({ [name]: text })) };
    return this.headerCache.list;
  }

  async flush(): Promise<void> {
    // Returns once every queued record is acknowledged or failed (librdkafka's queue is empty), or fails on the timeout.
    await nativeCall((done) => this.producer.flush(CALL_TIMEOUT_MS, done)).catch((err) => this.rethrow(err));
    this.throwIfBroken();
  }

  async sendOffsets(group: string, topic: string, offset: number, metadata: string): Promise<void> {
    const consumer = await this.consumerFor(group, topic);
    await retryingCall(() => nativeCall((done) => this.producer.sendOffsetsToTransaction([{ topic, partition: 0, offset, metadata } as never], consumer, CALL_TIMEOUT_MS, done))).catch((err) =>
      this.rethrow(err),
    );
  }

  async commit(): Promise<void> {
    await retryingCall(() => nativeCall((done) => this.producer.commitTransaction(CALL_TIMEOUT_MS, done))).catch((err) => this.rethrow(err));
  }

  /** Rejects only when the producer is finished (fenced or another fatal error): an abort that fails otherwise is left to the broker's transaction timeout. */
  async abort(): Promise<void> {
    const failed = await nativeCall((done) => this.producer.abortTransaction(CALL_TIMEOUT_MS, done)).then(
      () => null,
      (err: LibrdKafkaError) => err,
    );
    if (this.fatal) throw this.fatal;
    if (failed && (failed.isFatal || isNativeFenced(failed))) throw failed;
    // The aborted records come back purged, possibly after this; purges are not failures (see the delivery-report handler).
    this.deliveryFailure = null;
  }

  async disconnect(): Promise<void> {
    const consumer = this.offsetsConsumer;
    this.offsetsConsumer = null;
    if (consumer) await nativeCall((done) => consumer.disconnect((err) => done(err))).catch(() => {});
    if (this.producer.isConnected()) await nativeCall((done) => this.producer.disconnect(5000, (err) => done(err))).catch(() => {});
  }

  /** The consumer whose group metadata sendOffsetsToTransaction needs; it never subscribes nor fetches. */
  private async consumerFor(group: string, topic: string): Promise<NativeConsumer> {
    if (this.offsetsConsumer && this.offsetsGroup === group) return this.offsetsConsumer;
    if (this.offsetsConsumer) await nativeCall((done) => this.offsetsConsumer!.disconnect((err) => done(err))).catch(() => {});
    const consumer = new KafkaConsumer({ ...librdkafkaSettings(this.config), 'group.id': group, 'enable.auto.commit': false } as never, {});
    forwardLogs(consumer, this.logger);
    await nativeCall((done) => consumer.connect({ timeout: CALL_TIMEOUT_MS }, (err) => done(err)));
    await untilGroupCoordinatorAnswers(consumer, topic);
    this.offsetsConsumer = consumer;
    this.offsetsGroup = group;
    return consumer;
  }

  private throwIfBroken(): void {
    if (this.fatal) throw this.fatal;
    if (this.deliveryFailure) throw this.deliveryFailure;
  }

  /** A fatal error (fenced above all) is what the caller must see, not the failed call it caused. */
  private rethrow(err: unknown): never {
    if (this.fatal && !isNativeFenced(err)) throw this.fatal;
    throw err;
  }
}

/**
 * On a cluster where no consumer group has committed yet, `__consumer_offsets` and the
 * group's coordinator do not exist until asked for. librdkafka's sendOffsetsToTransaction
 * asked then could wait forever, past its own timeout (librdkafka 2.15 against Kafka 4.4,
 * reproduced on a fresh broker left idle two minutes: the call sat in rd_kafka_txn_op_req
 * without a deadline, and the process could not even exit, since Node joins the thread that
 * made the call). A committed() read for the group finds its coordinator the same way,
 * and its timeout holds: it is asked first, until it answers.
 */
async function untilGroupCoordinatorAnswers(consumer: NativeConsumer, topic: string): Promise<void> {
  const deadline = Date.now() + CALL_TIMEOUT_MS;
  for (;;) {
    try {
      await nativeCall<unknown>((done) => consumer.committed([{ topic, partition: 0 }] as never, COORDINATOR_PROBE_TIMEOUT_MS, done));
      return;
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await sleep(COORDINATOR_PROBE_RETRY_MS);
    }
  }
}

const COORDINATOR_PROBE_TIMEOUT_MS = 5000;
const COORDINATOR_PROBE_RETRY_MS = 200;

/** How long a producer waits before offering a record again to a full queue. */
const QUEUE_FULL_RETRY_MS = 5;

const isPurge = (err: { code?: number }): boolean => err.code === CODES.ERRORS.ERR__PURGE_QUEUE || err.code === CODES.ERRORS.ERR__PURGE_INFLIGHT;

/** librdkafka marks a transactional call that may simply be made again (a timeout, a coordinator moving) as retriable. */
async function retryingCall(call: () => Promise<void>, attempts = 10): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      return await call();
    } catch (err) {
      if (!(err as LibrdKafkaError).isRetriable || i >= attempts) throw err;
    }
  }
}
