import type { KafkaConsumer as NativeConsumer } from '@confluentinc/kafka-javascript';
import type { KafkaConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import { forwardLogs, KafkaConsumer, librdkafkaSettings, nativeCall } from './librdkafka.js';
import { kafkaClient, type Admin, type ClientOverrides, type OffsetsAdmin } from './rdkafka.js';
import { backoffDelays } from '../backoff.js';
import { isBrokerUnreachable } from '../outages.js';
import { sleepUnlessAborted } from '../timeout.js';

/** How long one committed-offsets read may wait for the group's coordinator. */
const COMMITTED_TIMEOUT_MS = 10_000;
/** How long a checkpoint's read (the exact-metadata one, after the guard's) may wait. */
const CHECKPOINT_READ_TIMEOUT_MS = 30_000;

/**
 * The admin calls a running deliverer makes over and over (lag, sink state, BigQuery
 * history), on librdkafka, made safe for a Kafka restart.
 *
 * librdkafka 2.15's admin requests to a group coordinator (ListConsumerGroupOffsets, which
 * both the KafkaJS-compatible `fetchOffsets` and the native `listConsumerGroupOffsets` are)
 * abort the whole process when the coordinator answers "not coordinator"/"loading" or the
 * request times out while the broker is down (`rd_kafka_enq_once_del_source_return:
 * Assertion 'eonce->refcnt > 0'`, confluentinc/librdkafka#4605, open; reproduced here
 * against a private broker: SIGSEGV/SIGABRT within a second of a broker start, every time).
 * So committed offsets are read the consumer's way instead: `committed()` of a native
 * consumer of that group that never subscribes (no member joins, nothing is assigned); it
 * goes through the consumer-group state machine, which waits for the coordinator and fails
 * with a timeout rather than aborting. Topic lists and partition ends stay on the admin
 * (metadata and ListOffsets go to partition leaders, not through that code).
 *
 * One consumer per group asked about, made on first use and kept until disconnect().
 * Committed metadata comes back without its last byte (the binding takes it for
 * librdkafka's NUL), so callers here use only the offsets; exact metadata: checkpointAdmin().
 */
export class RestartSafeAdmin implements OffsetsAdmin {
  private readonly admin: Admin;
  private readonly consumers = new Map<string, Promise<NativeConsumer>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly config: KafkaConfig,
    private readonly logger: Logger,
    /** Attempts after the first for a call that found no broker; kafka.retry.retries when absent. */
    private readonly retries: number = config.retry.retries === 'forever' ? Infinity : config.retry.retries,
  ) {
    // Quiet: its callers report a failed call themselves, folded into the outage's one line
    // (outages.ts); librdkafka's own connection logs would add late "identical errors
    // suppressed" lines after the broker is back, which read as a second outage.
    this.admin = kafkaClient(config, logger, { quiet: true }).admin();
  }

  connect(): Promise<void> {
    return this.retrying('connect', () => this.admin.connect());
  }

  listTopics(): Promise<string[]> {
    return this.retrying('listTopics', () => this.admin.listTopics());
  }

  fetchTopicOffsets(topic: string, options?: unknown): Promise<Array<{ partition: number; high: string; low: string }>> {
    return this.retrying('fetchTopicOffsets', () => this.admin.fetchTopicOffsets(topic, options as never));
  }

  fetchOffsets(options: { groupId: string; topics: string[] }): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string; metadata: string | null }> }>> {
    return this.retrying('fetchOffsets', () => this.committed(options));
  }

  /**
   * A call that found no broker is made again under `kafka.retry` (forever by default), as
   * kafkajs's admin did: a sink-state check inside a batch then waits for Kafka instead of
   * failing the batch. Each attempt is a real request (what the restart test exercises);
   * disconnect() ends the waiting.
   */
  private async retrying<T>(call: string, run: () => Promise<T>): Promise<T> {
    const delays = backoffDelays(this.config.retry);
    for (let attempt = 1; ; attempt++) {
      try {
        return await named(call, run);
      } catch (err) {
        if (attempt > this.retries || this.stopping.signal.aborted || !isBrokerUnreachable((err as Error).message)) throw err;
        await sleepUnlessAborted(delays(), this.stopping.signal);
      }
    }
  }

  private async committed(options: { groupId: string; topics: string[] }): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string; metadata: string | null }> }>> {
    const topics = await this.admin.fetchTopicMetadata({ topics: options.topics, timeout: COMMITTED_TIMEOUT_MS });
    const wanted = topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionId })));
    const consumer = await this.consumerFor(options.groupId);
    const committed = await nativeCall<Array<{ topic: string; partition: number; offset: number; metadata?: string | null }>>((done) => consumer.committed(wanted, COMMITTED_TIMEOUT_MS, done));
    return options.topics.map((topic) => ({
      topic,
      partitions: committed
        .filter((c) => c.topic === topic)
        // librdkafka says "none" with a negative offset (-1001); the admin's shape is '-1'.
        .map((c) => ({ partition: c.partition, offset: c.offset >= 0 ? String(c.offset) : '-1', metadata: c.metadata ?? null })),
    }));
  }

  private consumerFor(group: string): Promise<NativeConsumer> {
    let made = this.consumers.get(group);
    if (!made) {
      made = (async () => {
        const consumer = new KafkaConsumer({ ...librdkafkaSettings(this.config), 'group.id': group, 'enable.auto.commit': false, 'isolation.level': 'read_committed' } as never, {});
        forwardLogs(consumer, this.logger, { quiet: true });
        await nativeCall((done) => consumer.connect({ timeout: 30_000 }, (err) => done(err)));
        return consumer;
      })();
      this.consumers.set(group, made);
      // A failed connect is forgotten: the next read makes a new consumer.
      made.catch(() => this.consumers.get(group) === made && this.consumers.delete(group));
    }
    return made;
  }

  async disconnect(): Promise<void> {
    this.stopping.abort();
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    await Promise.all(
      consumers.map(async (made) => {
        const consumer = await made.catch(() => null);
        if (consumer) await nativeCall((done) => consumer.disconnect((err) => done(err))).catch(() => {});
      }),
    );
    await this.admin.disconnect().catch(() => {});
  }
}

/**
 * librdkafka says only "Local: Timed out" when a call found no broker; the callers (lag,
 * sink state) tell an outage from a real failure by the message (outages.ts), so the call
 * and the broker are named, the library's error kept as the cause.
 */
async function named<T>(call: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (!/timed out|transport failure|all broker/i.test(message)) throw err;
    const what = /timed out/i.test(message) ? 'timed out' : 'failed';
    throw Object.assign(new Error(`kafka: request ${call} ${what}, the broker did not answer (${message})`, { cause: err }), { code: (err as { code?: unknown }).code });
  }
}

/** What the deliverer hands its runners for their periodic admin calls. */
export function restartSafeAdmins(config: KafkaConfig, logger: Logger): { admin(): OffsetsAdmin } {
  return { admin: () => new RestartSafeAdmin(config, logger) };
}

/**
 * The admin capture and backfill read their checkpoint with at start (and status, backfill
 * runs and verify runs): the compatible admin, whose `fetchOffsets` returns the offset
 * metadata exactly (a checkpoint written by kafkajs before the upgrade has no trailing NUL,
 * and a consumer's `committed()` would cut its last byte). That call is the
 * group-coordinator request that can abort the process around a Kafka restart, which is
 * when capture restarts; so each one is made only after a consumer's `committed()` of the
 * same group has answered (it waits for the coordinator, and fails instead of aborting).
 * That narrows the window to a broker going away between the two calls; it does not close it.
 */
const NAMED_CALLS = new Set(['listTopics', 'listGroups', 'createTopics', 'describeGroups', 'fetchTopicOffsets', 'fetchTopicMetadata']);

export function checkpointAdmin(config: KafkaConfig, logger: Logger, overrides: ClientOverrides = {}): Admin {
  const admin = kafkaClient(config, logger, overrides).admin();
  // No retries of its own: the caller (capture's restart loop, status) decides.
  const guard = new RestartSafeAdmin(config, logger, 0);
  const fetchOffsets: Admin['fetchOffsets'] = async (options) => {
    await ensureConnected();
    const topics = (options.topics ?? []).map((t) => (typeof t === 'string' ? t : t.topic));
    // The library's default is 5 s: a resumed backfill under load (the short crash test, with
    // a stream delivering beside it) failed with it once; a start-up read can wait longer.
    const read = () => named('fetchOffsets', () => admin.fetchOffsets({ ...options, timeout: CHECKPOINT_READ_TIMEOUT_MS } as typeof options));
    if (topics.length === 0) return read();
    // A commit landing between the two reads makes them disagree (exactMetadata says so): read both again.
    for (let attempt = 1; ; attempt++) {
      const cut = await guard.fetchOffsets({ groupId: options.groupId, topics });
      const full = await read();
      try {
        return full.map((t) => ({
          ...t,
          partitions: t.partitions.map((p) => ({ ...p, metadata: exactMetadata(p.metadata, cut.find((c) => c.topic === t.topic)?.partitions.find((c) => c.partition === p.partition)?.metadata ?? null) })),
        }));
      } catch (err) {
        if (!(err instanceof MetadataReadsDisagree) || attempt >= 3) throw err;
      }
    }
  };
  // Connected on first use, not by connect(): the binding's admin disconnect destroys the
  // librdkafka handle on the JavaScript thread, which can block it for seconds while the
  // broker is away, so a capture restart that fails before reading (Kafka still down) must
  // not have made one.
  let connected: Promise<void> | null = null;
  const ensureConnected = (): Promise<void> => (connected ??= Promise.all([admin.connect(), guard.connect()]).then(() => undefined));
  const connect = async (): Promise<void> => {};
  const disconnect = async (): Promise<void> => {
    if (!connected) return;
    await connected.catch(() => {});
    await guard.disconnect();
    await admin.disconnect();
  };
  return new Proxy(admin, {
    get(target, name) {
      if (name === 'fetchOffsets') return fetchOffsets;
      if (name === 'connect') return connect;
      if (name === 'disconnect') return disconnect;
      const value = Reflect.get(target, name, target) as unknown;
      if (typeof value !== 'function') return value;
      const method = value as (...a: unknown[]) => unknown;
      // Its requests, named when they time out (see named()); anything else as it is.
      return NAMED_CALLS.has(String(name)) ? (...args: unknown[]) => named(String(name), async () => (await ensureConnected(), method.apply(target, args) as Promise<unknown>)) : method.bind(target);
    },
  });
}

export class MetadataReadsDisagree extends Error {}

/**
 * The committed offset metadata, exactly, from the two reads `checkpointAdmin` makes.
 * The admin's (`full`) is read by the binding as a C string, up to the first NUL: exact for
 * metadata librdkafka's native writer sent (it appends a NUL), but librdkafka's copy of
 * the admin result does not NUL-terminate, so metadata without one (a checkpoint written by
 * kafkajs before the upgrade) comes back with whatever heap bytes follow it (seen: about 1
 * read in 100 of a 3 KB checkpoint had stray bytes after its JSON). A consumer's
 * `committed()` (`cut`) has the exact length but drops the last byte (the binding takes it
 * for the NUL). So: the admin's text, cut to the committed length plus that byte. Reads
 * that do not agree (a commit in between; metadata whose last character is multi-byte)
 * throw MetadataReadsDisagree rather than guess.
 */
export function exactMetadata(full: string | null | undefined, cut: string | null): string | null {
  if (full === null || full === undefined || full === '') return full ?? null;
  // No metadata by committed() (none, or empty) but some by the admin: a commit in between.
  if (cut === null) throw new MetadataReadsDisagree('kafka: the two reads of the committed offset metadata disagree (a commit between them?)');
  const bytes = Buffer.from(full, 'utf8');
  const length = Buffer.byteLength(cut, 'utf8') + 1;
  const text = bytes.length < length ? full : bytes.subarray(0, length).toString('utf8');
  if (!text.startsWith(cut)) throw new MetadataReadsDisagree('kafka: the two reads of the committed offset metadata disagree (a commit between them?)');
  return text;
}
