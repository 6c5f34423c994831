import rdkafka from '@confluentinc/kafka-javascript';
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import type { KafkaConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import { librdkafkaSettings as nativeSettings } from './librdkafka.js';
import { isBrokerUnreachable, outageFailure } from '../outages.js';

/**
 * Kafka clients on librdkafka (@confluentinc/kafka-javascript): every consumer, DLQ
 * producer and admin call outside capture's and backfill's transactional writers.
 * Two faces of the one library:
 *  - its KafkaJS-compatible API for admin calls and the small producers (DLQ, replay's
 *    resolutions), where the kafkajs shape was kept and speed does not matter (topic
 *    configs are the one thing it lacks: ./kafka-configs.ts);
 *  - its native API for reading topics (./batch-consumer.ts): manual commits, seeks on
 *    assignment and positions past transaction markers, which the compatible layer hides.
 * ESM: only the default export works at run time (named exports type-check but are undefined).
 */
export type Kafka = KafkaJS.Kafka;
export type Admin = KafkaJS.Admin;

/**
 * The admin calls a running pipeline makes over and over (lag, sink state, history). The
 * deliverer gives its runners ./restart-safe-admin.ts's, which reads committed offsets
 * through a consumer: this library's admin aborts the process on a group-coordinator
 * request during a Kafka restart (that module says how).
 */
export interface OffsetsAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  listTopics(): Promise<string[]>;
  fetchOffsets(options: { groupId: string; topics: string[] }): Promise<Array<{ topic: string; partitions: Array<{ partition: number; offset: string; metadata: string | null }> }>>;
  fetchTopicOffsets(topic: string, options?: unknown): Promise<Array<{ partition: number; high: string; low: string }>>;
}
export type Producer = KafkaJS.Producer;

export interface ClientOverrides {
  /** Produce retries (librdkafka retries metadata and connections on its own). */
  retries?: number;
  connectionTimeoutMs?: number;
  /** A probe expects connection errors and reports them itself: keep the client's at debug. */
  quiet?: boolean;
}

/** librdkafka settings every client of the pipeline shares: clients/librdkafka.ts's, the one source of them. */
export function librdkafkaSettings(config: KafkaConfig, overrides: ClientOverrides = {}): Record<string, string | number | boolean> {
  return nativeSettings(config, overrides.connectionTimeoutMs !== undefined ? { connectionTimeoutMs: overrides.connectionTimeoutMs } : {}) as Record<string, string | number | boolean>;
}

/** The kafkaJS logger interface, forwarding to ours (the library would print to the console). */
export function kafkaLogger(logger: Logger, quiet = false): KafkaJS.Logger {
  const log = logger.child('kafka');
  const f = (extra: object | undefined) => (extra ?? {}) as Record<string, unknown>;
  // The broker gone (a restart, a full disk): every retry says so; one line per outage (outages.ts).
  const unreachable = (message: string, fields: Record<string, unknown>) => isBrokerUnreachable(message, fields);
  const outage = (message: string, fields: Record<string, unknown>) => {
    if (!outageFailure(log, 'kafka', fields['error'] ?? message, 'the kafka client')) log.debug(message, fields);
  };
  const forward: KafkaJS.Logger = {
    info: (message, extra) => log.debug(message, f(extra)),
    debug: (message, extra) => log.debug(message, f(extra)),
    warn: (message, extra) => (quiet ? log.debug(message, f(extra)) : unreachable(message, f(extra)) ? outage(message, f(extra)) : log.warn(message, f(extra))),
    error: (message, extra) =>
      quiet || isRoutineRetry(message, f(extra)) ? log.debug(message, f(extra)) : unreachable(message, f(extra)) ? outage(message, f(extra)) : log.error(message, f(extra)),
    namespace: () => forward,
    setLogLevel: () => {},
  };
  return forward;
}

/** Broker answers logged as errors although they are a normal part of transactions and start-up, and are retried. */
const ROUTINE = /concurrent operation on the same transaction|coordinator is loading|Coordinator load in progress|Waiting for coordinator|coordinator is not available|Failed to find group coordinator|not the leader for that topic-partition|not the correct coordinator|There is no leader for this topic-partition/i;

export function isRoutineRetry(message: string, fields: Record<string, unknown>): boolean {
  return ROUTINE.test(message) || ROUTINE.test(String(fields['error'] ?? ''));
}

/** The native settings each client was made with, for the native consumers made beside it. */
const settingsByClient = new WeakMap<Kafka, { settings: Record<string, string | number | boolean>; logger: Logger }>();

/** The librdkafka settings and logger `kafka` was made with (by `kafkaClient`). */
export function nativeSettingsOf(kafka: Kafka): { settings: Record<string, string | number | boolean>; logger: Logger } {
  const found = settingsByClient.get(kafka);
  if (!found) throw new Error('not a client made by kafkaClient()');
  return found;
}

/** A client of the KafkaJS-compatible API (admin, producers), logging through `logger`. */
export function kafkaClient(config: KafkaConfig, logger: Logger, overrides: ClientOverrides = {}): Kafka {
  const retries = overrides.retries ?? (config.retry.retries === 'forever' ? 2_147_483_647 : config.retry.retries);
  // The compatible API takes its settings from the kafkaJS block (log level, retries and
  // timeouts included); librdkafkaSettings is for the native consumers made beside it.
  const kafka = new rdkafka.KafkaJS.Kafka({
    kafkaJS: {
      brokers: config.brokers,
      clientId: config.clientId,
      connectionTimeout: overrides.connectionTimeoutMs ?? 3000,
      requestTimeout: 30000,
      retry: { retries, initialRetryTime: config.retry.initialDelayMs, maxRetryTime: config.retry.maxDelayMs },
      logLevel: rdkafka.KafkaJS.logLevel.WARN,
      logger: kafkaLogger(logger, overrides.quiet),
    },
  });
  settingsByClient.set(kafka, { settings: librdkafkaSettings(config, overrides), logger });
  return kafka;
}

/** An idempotent producer, acks=all, murmur2 partitioning (kafkajs's and Java's default). */
export function idempotentProducer(kafka: Kafka): Producer {
  return kafka.producer({ 'linger.ms': 5, partitioner: 'murmur2_random', kafkaJS: { idempotent: true, acks: -1, maxInFlightRequests: 1 } });
}

/** A message header as a string (kafkajs and this library both give Buffers, or arrays of them). */
export function headerText(value: Buffer | string | Array<Buffer | string> | undefined): string | undefined {
  if (value === undefined) return undefined;
  const one = Array.isArray(value) ? value[value.length - 1] : value;
  return one === undefined ? undefined : one.toString();
}

/**
 * librdkafka appends a NUL byte to the offset metadata it commits (and kafkajs's reader
 * then chokes on it); read it back without.
 */
export function metadataText(metadata: string | null | undefined): string | null {
  if (metadata === null || metadata === undefined) return null;
  return metadata.replace(/\0+$/, '');
}

/**
 * Each partition's end (the last stable offset: what a read_committed consumer reaches) and
 * start. The library's default is read_uncommitted, which counts records of open
 * transactions that no consumer of ours will ever see; kafkajs's was read_committed.
 */
export function endOffsets(admin: OffsetsAdmin, topic: string): Promise<Array<{ partition: number; high: string; low: string }>> {
  return admin.fetchTopicOffsets(topic, { isolationLevel: rdkafka.KafkaJS.IsolationLevel.READ_COMMITTED, timeout: 10_000 });
}

