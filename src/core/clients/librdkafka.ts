import rdkafka from '@confluentinc/kafka-javascript';
import type { GlobalConfig, LibrdKafkaError } from '@confluentinc/kafka-javascript';
import type { KafkaConfig } from '../config/types.js';
import type { Logger } from '../logger.js';
import { downOrJustBack, isBrokerUnreachable } from '../outages.js';

/**
 * The one door to `@confluentinc/kafka-javascript`'s native API (librdkafka). Everything
 * that makes a librdkafka client takes its settings from `librdkafkaSettings` and hangs its
 * log on `forwardLogs`, so every client talks to the same brokers with the same timeouts
 * and backoff, and none of them ever prints (the engine logs only through our Logger).
 *
 * The package is CommonJS with a hand-written ESM facade: in this ESM project only its
 * default export works at run time (named imports type-check, then are undefined).
 */
export const { Producer, KafkaConsumer, AdminClient, CODES } = rdkafka;
export type { LibrdKafkaError, GlobalConfig, ProducerGlobalConfig, ConsumerGlobalConfig } from '@confluentinc/kafka-javascript';

export interface NativeSettingsOptions {
  /** TCP connect plus handshake to one broker; the default suits the local stack and a LAN. */
  connectionTimeoutMs?: number;
}

/**
 * Our KafkaConfig as librdkafka settings, for any client (producer, consumer, admin); the
 * caller adds what its role needs (transactional.id, group.id, ...).
 *
 * `retry.backoff.ms` is NOT kafka.retry.initialDelayMs: librdkafka uses it for every retried
 * request, and the broker answers CONCURRENT_TRANSACTIONS for a few ms after each commit
 * (AddPartitions/AddOffsets of the next transaction), so a 300 ms first retry would cost
 * that much per transaction (measured with kafkajs, which had the same knob). It grows
 * exponentially up to kafka.retry.maxDelayMs. Reconnects to a broker that is down use the
 * configured initial delay.
 */
export function librdkafkaSettings(config: KafkaConfig, options: NativeSettingsOptions = {}): GlobalConfig {
  const maxDelayMs = Math.min(config.retry.maxDelayMs, 300_000);
  return {
    'bootstrap.servers': config.brokers.join(','),
    'client.id': config.clientId,
    'socket.connection.setup.timeout.ms': Math.max(1000, options.connectionTimeoutMs ?? 3000),
    'socket.timeout.ms': 30_000,
    'retry.backoff.ms': Math.min(5, maxDelayMs),
    'retry.backoff.max.ms': maxDelayMs,
    'reconnect.backoff.ms': Math.min(config.retry.initialDelayMs, maxDelayMs),
    'reconnect.backoff.max.ms': maxDelayMs,
    // Brokers close idle connections as a matter of course; librdkafka reconnects on use.
    'log.connection.close': false,
    // Info and up reach the event callback (below); librdkafka's debug contexts stay off.
    log_level: 6,
  };
}

/** The client side of the event callback: what `forwardLogs` listens on. */
interface LogEmitter {
  on(event: 'event.log', listener: (entry: { severity: number; fac: string; message: string }) => void): unknown;
  on(event: 'event.error', listener: (err: LibrdKafkaError) => void): unknown;
}

/**
 * librdkafka's own log and error events, into our Logger (child `librdkafka`). It logs at
 * error level what it then retries on its own (a broker connection refused or closed, a
 * coordinator moving or loading): those go to debug, so an outage is told once by the
 * component that waits on it, not once per reconnect. `quiet` puts everything at debug
 * (a probe that expects failures and reports them itself).
 */
export function forwardLogs(client: LogEmitter, logger: Logger, options: { quiet?: boolean } = {}): void {
  const log = logger.child('librdkafka');
  client.on('event.log', ({ severity, fac, message }) => {
    const fields = { facility: fac, severity };
    // A transaction the restarted broker no longer knows is part of the outage (the owner says so once).
    if (options.quiet || isRoutineLog(fac, message) || (OUTAGE_ECHOES.has(fac) && downOrJustBack('kafka'))) log.debug(message, fields);
    else if (severity <= 3) log.error(message, fields);
    else if (severity === 4) log.warn(message, fields);
    else log.debug(message, fields);
  });
  client.on('event.error', (err) => {
    const fields = { code: err.code, fatal: err.isFatal === true };
    if (options.quiet || (!err.isFatal && isRoutineError(err)) || (!isNativeFenced(err) && downOrJustBack('kafka'))) log.debug(err.message, fields);
    else log.error(err.message, fields);
  });
}

/**
 * What a broker restart leaves behind, logged by librdkafka as it goes: a transaction the
 * restarted broker no longer knows (TXNERR, FATAL: the owner says so once), and an offset
 * commit refused because the member expired while the broker was away (COMMITFAIL "Unknown
 * member": the group is joined again and the next owner reads from the last commit).
 */
const OUTAGE_ECHOES = new Set(['TXNERR', 'FATAL', 'COMMITFAIL']);

/** Transport and coordinator conditions librdkafka retries by itself (facility FAIL/REQTMOUT or these messages). */
const ROUTINE_LOG = /Connection refused|Disconnected|connection reset|timed out|Coordinator load in progress|Not coordinator|coordinator not available|CONCURRENT_TRANSACTIONS|concurrent operation on the same transaction|Leader not available|Broker: Unknown topic or partition|broker transport failure|all broker connections are down|not found in cache|Waiting for coordinator/i;

export function isRoutineLog(facility: string, message: string): boolean {
  return facility === 'FAIL' || facility === 'REQTMOUT' || ROUTINE_LOG.test(message);
}

const ROUTINE_ERRORS = new Set<number>([
  CODES.ERRORS.ERR__TRANSPORT,
  CODES.ERRORS.ERR__ALL_BROKERS_DOWN,
  CODES.ERRORS.ERR__RESOLVE,
  CODES.ERRORS.ERR__TIMED_OUT,
  CODES.ERRORS.ERR_COORDINATOR_LOAD_IN_PROGRESS,
  CODES.ERRORS.ERR_COORDINATOR_NOT_AVAILABLE,
  CODES.ERRORS.ERR_NOT_COORDINATOR,
  CODES.ERRORS.ERR_CONCURRENT_TRANSACTIONS,
]);

export function isRoutineError(err: { code?: number; message?: string }): boolean {
  // Some errors reach the event callback with code -1 and only the text to go by.
  return (err.code !== undefined && ROUTINE_ERRORS.has(err.code)) || ROUTINE_LOG.test(err.message ?? '');
}

/**
 * A failure that is Kafka restarting or moving a coordinator, not a problem of its own: the
 * broker's errors for that (NOT_COORDINATOR, a lost transport...), or any failure while an
 * outage is open or just over. Whoever retries it logs it at debug; the outage has its one
 * line (../outages.ts). server-restarts saw a batch and a sink-state check fail with
 * "Broker: Not coordinator" from the broker shutting down, 0.1 s before the outage's line.
 */
export function isKafkaChurn(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  return isRoutineError({ message, ...(typeof code === 'number' ? { code } : {}) }) || isBrokerUnreachable(message) || downOrJustBack('kafka');
}

/**
 * A librdkafka error that is the broker restarting or moving a coordinator: its code
 * (isRoutineError), or the broker's answer in its text. Not any text that says "timed out":
 * capture's own errors can, and they are not Kafka's (capture tells these as Kafka's outage).
 */
export function isKafkaBrokerChurn(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (typeof e.code === 'number' && e.code !== -1 && isRoutineError({ code: e.code, message: '' })) return true;
  return typeof e.message === 'string' && /\bBroker: (Not coordinator|Coordinator load in progress|Coordinator not available|Leader not available)\b/i.test(e.message);
}

/**
 * A librdkafka fenced producer: `ERR__FENCED` (-144, the fatal error librdkafka raises once
 * the broker said the epoch is old) or the broker's own PRODUCER_FENCED / INVALID_PRODUCER_EPOCH.
 */
export function isNativeFenced(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === CODES.ERRORS.ERR__FENCED || code === CODES.ERRORS.ERR_PRODUCER_FENCED || code === CODES.ERRORS.ERR_INVALID_PRODUCER_EPOCH;
}

/**
 * A transaction librdkafka can no longer finish (fatal producer, INVALID_TXN_STATE), not a
 * fencing: what a broker restart leaves of the transaction open across it. The text is read
 * too: some of these reach us with code -1.
 */
export function isBrokenTransaction(err: unknown): boolean {
  const e = err as { code?: unknown; isFatal?: boolean; message?: string } | null;
  if (!e || isNativeFenced(e)) return false;
  return e.isFatal === true || e.code === CODES.ERRORS.ERR__FATAL || e.code === CODES.ERRORS.ERR_INVALID_TXN_STATE || /transactional operation in an invalid state|Fatal transaction error/i.test(e.message ?? '');
}

/** A callback-style librdkafka call as a promise (its callbacks pass a LibrdKafkaError or null/undefined). */
export function nativeCall<T = void>(start: (done: (err: LibrdKafkaError | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((err, value) => (err ? reject(err) : resolve(value as T)));
  });
}
