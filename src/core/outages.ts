import { createConnection } from 'node:net';
import type { Logger } from './logger.js';

/**
 * One log line when a server the pipeline needs goes away, and one when it is back.
 *
 * A broker or database restart makes every client retry, and each retry used to log a
 * warning (or a stack trace): an operator reading the log of a 30 s Kafka restart saw
 * dozens of lines and could not tell when it started or ended. Here every retry is
 * reported, but only the first failure of an outage is logged as a warning (which server,
 * since when, the error); the rest go to debug; the first success afterwards logs one
 * line with how long the outage lasted.
 *
 * Outages are per server and per process (the capturer and three sinks all see the same
 * Kafka go away: one line, by whoever saw it first), hence the module-level state.
 */
export type ServerName = 'kafka' | 'postgres';

interface Outage {
  since: number;
  retries: number;
  reportedBy: string;
}

const open = new Map<ServerName, Outage>();
/** When each server's last outage ended (Date.now()). */
const ended = new Map<ServerName, number>();
/** How long after a server is back a timed-out request still counts as the outage's (see outageFailure). */
const LATE_TIMEOUT_MS = 5000;

export interface OutageView {
  server: ServerName;
  since: Date;
  retries: number;
}

/** A failure to reach `server`. Logs the outage's first line; returns true when it did (the caller then need not log its own). */
export function outageFailure(logger: Logger, server: ServerName, error: unknown, reportedBy: string, fields: Record<string, unknown> = {}): boolean {
  const current = open.get(server);
  const message = error instanceof Error ? error.message : String(error);
  if (current) {
    current.retries++;
    logger.debug(`${server} still unreachable`, { error: message, retries: current.retries, ...fields });
    return false;
  }
  // A call that times out just after the server came back was sent during the outage (its
  // timeout ran through it): an echo of that outage, not a new one (server-restarts saw
  // capture's 'timed out' 0.8 s after Kafka was back open a second, 0.5 s outage).
  const back = ended.get(server);
  if (back !== undefined && Date.now() - back < LATE_TIMEOUT_MS && /timed out/i.test(message)) {
    logger.debug(`${server}: a request from before it came back timed out`, { error: message, ...fields });
    return false;
  }
  const since = Date.now();
  open.set(server, { since, retries: 0, reportedBy });
  logger.warn(`${server} unreachable since ${new Date(since).toISOString()} (seen by ${reportedBy}): retrying with backoff; one line when it is back`, { error: message, ...fields });
  return true;
}

/**
 * `server` answered again: logs the outage's last line (once) with how long it lasted. The
 * evidence must be an answer to a request made now (a new connection, a commit, a probe):
 * records a consumer hands over are not, as librdkafka fetches ahead and kept handing over
 * what it had read before the outage (server-restarts saw "reachable again" 2.2 s into a 30 s
 * Kafka outage, then a second outage opened), nor is an answer to a request sent before the
 * outage began (`askedAt`).
 */
export function outageRecovered(logger: Logger, server: ServerName, reportedBy: string, askedAt?: number): void {
  const current = open.get(server);
  if (!current) return;
  // An answer to a request sent before the outage began (`askedAt`, Date.now() when it was
  // sent) is no evidence that it ended: the answer may have come before the failure that
  // opened the outage and only been handled after it (a reply waits for the event loop, which
  // lagged by hundreds of ms under load). One sent after `since` was answered after it.
  if (askedAt !== undefined && askedAt < current.since) {
    logger.debug(`${server}: an answer to a request sent before the outage began; still unreachable`, { asked_at: new Date(askedAt).toISOString() });
    return;
  }
  open.delete(server);
  ended.set(server, Date.now());
  const seconds = Math.round((Date.now() - current.since) / 100) / 10;
  logger.info(`${server} reachable again after ${seconds} s down (${current.retries} retries; ${reportedBy} resumed)`, {
    down_since: new Date(current.since).toISOString(),
    down_seconds: seconds,
  });
}

/**
 * Whether `server` is down now or came back within `withinMs`. What a restart breaks on its
 * way back (a Kafka transaction the restarted coordinator no longer knows) is part of that
 * outage's story, not an error of its own.
 */
export function downOrJustBack(server: ServerName, withinMs = 60_000): boolean {
  const back = ended.get(server);
  return open.has(server) || (back !== undefined && Date.now() - back < withinMs);
}

/** Servers this process cannot reach right now (for health: not ready while one is down). */
export function openOutages(): OutageView[] {
  return [...open].map(([server, o]) => ({ server, since: new Date(o.since), retries: o.retries }));
}

/** For tests: forget every open outage. */
export function resetOutages(): void {
  open.clear();
  ended.clear();
}

/**
 * Which server an error came from, when its shape says so: a kafkajs error by its name, a
 * PostgreSQL one by its SQLSTATE or the messages node-postgres and the replication stream
 * give when the server goes away, and a refused or reset connection by the port it names.
 * `undefined` when it cannot be told (the caller then logs the error as it is).
 */
export function serverOf(error: unknown, ports: { postgres: number; kafka: number[] }): ServerName | undefined {
  for (let e = error as { name?: string; message?: string; code?: string; port?: number; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    const name = e.name ?? '';
    const message = e.message ?? '';
    if ((name.startsWith('KafkaJS') || /\bkafka|broker/i.test(message)) && BROKER_UNREACHABLE.test(`${name} ${message}`)) return 'kafka';
    // librdkafka's errors carry a numeric code (node's and PostgreSQL's are strings): a call
    // that timed out or lost its transport while the broker was away.
    if (typeof (e as { code?: unknown }).code === 'number' && /timed out|transport|all broker|connection refused|waiting for coordinator/i.test(message)) return 'kafka';
    if (typeof e.port === 'number') {
      if (e.port === ports.postgres) return 'postgres';
      if (ports.kafka.includes(e.port)) return 'kafka';
    }
    const port = /(?:ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH)\s+[\d.:a-f[\]]+:(\d+)/.exec(message)?.[1];
    if (port) {
      if (Number(port) === ports.postgres) return 'postgres';
      if (ports.kafka.includes(Number(port))) return 'kafka';
    }
    // Class 57 (operator intervention: shutdown, crash of a backend), 08 (connection), 53 (out of disk/memory).
    if (typeof e.code === 'string' && /^(57|08|53)[0-9A-Z]{3}$/.test(e.code)) return 'postgres';
    if (/replication stream ended|Connection terminated|terminating connection|the database system is (starting up|shutting down|in recovery)|not queryable|No space left on device/i.test(message)) return 'postgres';
  }
  return undefined;
}

/**
 * Kafka client messages while no broker answers: refused, reset or timed-out connections,
 * the crashes and restarts they cause, and a broker shutting down (its partitions briefly
 * without enough in-sync replicas).
 */
const BROKER_UNREACHABLE =
  /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Connection (error|timeout)|Closed connection|Broker not connected|Failed to connect|KafkaJSConnection|KafkaJSNumberOfRetriesExceeded|socket hang up|Request .* timed out|Restarting the consumer|fewer in-sync replicas|NOT_ENOUGH_REPLICAS|Broker transport failure|All broker connections are down|ERR__TRANSPORT|ERR__ALL_BROKERS_DOWN|Connect to \S+ failed: Connection refused/i;

export function isBrokerUnreachable(message: string, fields: Record<string, unknown> = {}): boolean {
  return BROKER_UNREACHABLE.test(message) || BROKER_UNREACHABLE.test(String(fields['error'] ?? ''));
}

/**
 * A failure of a periodic or retried job: part of an outage when the error says which
 * server went away (one line for the outage, outages above), else a warning of its own.
 */
export function logFailure(logger: Logger, message: string, error: unknown, ports: { postgres: number; kafka: number[] }, reportedBy: string, fields: Record<string, unknown> = {}): void {
  const server = serverOf(error, ports);
  if (server === undefined) logger.warn(message, { error: error instanceof Error ? error.message : String(error), ...fields });
  else if (!outageFailure(logger, server, error, reportedBy, fields)) logger.debug(message, { error: error instanceof Error ? error.message : String(error), ...fields });
}

/** The ports in a `host:port` list (Kafka brokers). */
export const portsOf = (brokers: string[]): number[] => brokers.map((b) => Number(b.slice(b.lastIndexOf(':') + 1))).filter((p) => Number.isInteger(p) && p > 0);

/** A connection cut without saying whose (a reset socket names no port). */
export const isConnectionError = (error: unknown): boolean => /ECONNRESET|EPIPE|ETIMEDOUT|socket hang up|Connection terminated/i.test((error as Error)?.message ?? '');

function answers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Which server does not accept a connection right now (PostgreSQL first), when an error did not say. */
export async function unreachableServer(servers: { postgres: { host: string; port: number }; kafka: string[] }, timeoutMs = 1000): Promise<ServerName | undefined> {
  if (!(await answers(servers.postgres.host, servers.postgres.port, timeoutMs))) return 'postgres';
  for (const broker of servers.kafka) {
    const at = broker.lastIndexOf(':');
    if (!(await answers(broker.slice(0, at), Number(broker.slice(at + 1)), timeoutMs))) return 'kafka';
  }
  return undefined;
}
