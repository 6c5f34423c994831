import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { HttpSinkConfig } from '../../config/types.js';
import type { Sink, SinkRecord, WriteResult } from '../contract.js';
import { recordKey } from '../../event/identity.js';
import type { Logger } from '../../logger.js';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign } from './signature.js';
import { redactUrl } from '../../redact-url.js';
import { type Answer, HttpTransport, RequestStopped, RequestTimeout } from './transport.js';
import { parseRetryAfter } from '../retry-after.js';

const PKG_URL = new URL('../../../../../package.json', import.meta.url);
const VERSION = (JSON.parse(readFileSync(PKG_URL, 'utf8')) as { version: string }).version;
export const USER_AGENT = `streamctl/${VERSION}`;

/** Requests in flight at once, over every `write` of this sink. */
export const DEFAULT_CONCURRENCY = 16;
/**
 * Units (one request each) the pipeline keeps going per partition. More than the requests
 * allowed at once: a unit waiting out a Retry-After or a backoff holds no connection, and
 * the others should go on meanwhile.
 */
const UNITS_IN_FLIGHT_PER_REQUEST_SLOT = 4;
/** How much of an error response's body goes into a result's message. */
const BODY_EXCERPT = 200;

export interface HttpSinkOptions {
  /** Requests in flight at once over all `write` calls (default 16). */
  concurrency?: number;
}

/**
 * Delivers events to an external HTTP endpoint, signed (HMAC, ./signature.ts) and with
 * an Idempotency-Key, so the receiver can drop a re-delivery: the pipeline retries, the
 * sink only reports, per record, whether it landed.
 *
 * - batchSize 1: one POST per event, body = the event's JSON, Idempotency-Key = event id.
 * - batchSize > 1: POST a JSON array of up to batchSize consecutive events. The
 *   Idempotency-Key is a hash of the batch's ids (see `batchIdempotencyKey`), and each
 *   event in the array still carries its own id, which is what the receiver dedups on: a
 *   re-delivery cut into different batches gets another header but the same ids.
 *
 * Requests go out with bounded concurrency, shared by every `write` in flight (./transport.ts keeps
 * connections alive), but never two of the same row at once: a request waits for the earlier one of
 * any row it carries, and is not sent when that one failed retryably (it is reported
 * `blocked`, retryable), so a retry can never land an older version of a row after a newer
 * one. Results come back in record order whatever order the answers arrive in.
 *
 * The HMAC key lives in a private field only; it is never logged nor put in a message.
 */
export class HttpSink implements Sink {
  readonly name = 'http' as const;
  readonly storesOffsets = false;
  /** One request per unit, so the pipeline retries each request on its own. */
  readonly units: { size: number; inFlight: number };

  readonly #key: string;
  readonly #url: string;
  readonly #healthUrl: string;
  readonly #timeoutMs: number;
  readonly #batchSize: number;
  readonly #concurrency: number;
  readonly #logger: Logger;
  readonly #slots: Semaphore;
  readonly #transport: HttpTransport;
  #target: URL | undefined;
  #stopped = false;

  constructor(config: HttpSinkConfig, hmacKey: string, logger: Logger, options: HttpSinkOptions = {}) {
    if (!hmacKey) throw new Error('HTTP sink: no HMAC key (set sinks.http.hmacKey or sinks.http.hmacKeyFile)');
    for (const [name, value] of [
      ['timeoutMs', config.timeoutMs],
      ['batchSize', config.batchSize],
      ['concurrency', options.concurrency ?? DEFAULT_CONCURRENCY],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`HTTP sink: ${name} must be a positive integer, got ${value}`);
    }
    // Only what is needed is kept: `config` may hold the key itself (sinks.http.hmacKey).
    this.#key = hmacKey;
    this.#url = config.url;
    this.#healthUrl = config.healthUrl;
    this.#timeoutMs = config.timeoutMs;
    this.#batchSize = config.batchSize;
    this.#concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.#slots = new Semaphore(this.#concurrency);
    this.#transport = new HttpTransport(this.#concurrency);
    this.units = { size: this.#batchSize, inFlight: this.#concurrency * UNITS_IN_FLIGHT_PER_REQUEST_SLOT };
    this.#logger = logger.child('sink.http');
  }

  async start(): Promise<void> {
    for (const [setting, raw] of [
      ['sinks.http.url', this.#url],
      ['sinks.http.healthUrl', this.#healthUrl],
    ] as const) {
      if (setting === 'sinks.http.healthUrl' && !raw) continue;
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new Error(`HTTP sink: ${setting} is not a URL`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`HTTP sink: ${setting} must be http: or https:`);
    }
    this.#target = new URL(this.#url);
    if (this.#stopped) {
      this.#transport.restart();
      this.#stopped = false;
    }
    this.#logger.info('HTTP sink ready', { url: redactUrl(this.#url), batch_size: this.#batchSize, timeout_ms: this.#timeoutMs });
  }

  async write(records: SinkRecord[]): Promise<WriteResult[]> {
    if (records.length === 0) return [];
    if (this.#stopped) return records.map(() => STOPPED);

    // Units of work: one record each, or runs of up to batchSize consecutive records.
    const units: number[][] = [];
    for (let i = 0; i < records.length; i += this.#batchSize) {
      units.push(records.slice(i, i + this.#batchSize).map((_, j) => i + j));
    }

    // Each unit waits for the latest earlier unit of every row it carries.
    const lastUnitOfRow = new Map<string, number>();
    const deps = units.map((indexes, u) => {
      const mine = new Set<number>();
      for (const i of indexes) {
        const event = (records[i] as SinkRecord).event;
        const row = recordKey(event.schema, event.table, event.key);
        const previous = lastUnitOfRow.get(row);
        if (previous !== undefined && previous !== u) mine.add(previous);
        lastUnitOfRow.set(row, u);
      }
      return [...mine];
    });

    const slots = this.#slots;
    const outcomes: Promise<WriteResult>[] = [];
    units.forEach((indexes, u) => {
      outcomes[u] = (async () => {
        const before = await Promise.all((deps[u] ?? []).map((d) => outcomes[d] as Promise<WriteResult>));
        if (before.some((r) => !r.ok && !r.permanent)) return BLOCKED;
        await slots.acquire();
        try {
          return await this.#send(indexes.map((i) => (records[i] as SinkRecord).event));
        } finally {
          slots.release();
        }
      })();
    });

    const settled = await Promise.all(outcomes);
    const results: WriteResult[] = new Array(records.length);
    units.forEach((indexes, u) => {
      for (const i of indexes) results[i] = settled[u] as WriteResult;
    });
    return results;
  }

  /** One POST of one event (batchSize 1) or of an array of events. */
  async #send(events: SinkRecord['event'][]): Promise<WriteResult> {
    const single = this.#batchSize === 1;
    const first = events[0];
    if (single && first === undefined) throw new Error('HTTP sink: empty request');
    const body = JSON.stringify(single ? first : events);
    const idempotencyKey = single ? (first as SinkRecord['event']).id : batchIdempotencyKey(events.map((e) => e.id));

    let res: Answer;
    try {
      res = await this.#transport.request(
        'POST',
        (this.#target ??= new URL(this.#url)),
        {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          [IDEMPOTENCY_HEADER]: idempotencyKey,
          [SIGNATURE_HEADER]: sign(this.#key, body),
        },
        body,
        this.#timeoutMs,
        BODY_EXCERPT,
      );
    } catch (err) {
      return this.#failed(idempotencyKey, this.#requestError(err));
    }

    if (res.status >= 200 && res.status < 300) return OK;
    const errorClass = `http_${res.status}`;
    const message = `HTTP ${res.status}${res.body ? `: ${res.body}` : ''}`;
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      const retryAfterMs = parseRetryAfter(headerOf(res, 'retry-after'));
      return this.#failed(idempotencyKey, {
        ok: false,
        permanent: false,
        errorClass,
        message,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
    if (res.status >= 300 && res.status < 400) {
      // A signed POST is not replayed to another place: the configured URL is wrong.
      const location = headerOf(res, 'location');
      return this.#failed(idempotencyKey, {
        ok: false,
        permanent: true,
        errorClass,
        message: `HTTP ${res.status}: redirect${location ? ` to ${redactUrl(location)}` : ''} not followed; fix sinks.http.url`,
      });
    }
    return this.#failed(idempotencyKey, { ok: false, permanent: true, errorClass, message });
  }

  #requestError(err: unknown): WriteResult {
    if (err instanceof RequestStopped) return STOPPED;
    if (err instanceof RequestTimeout) {
      return { ok: false, permanent: false, errorClass: 'timeout', message: `no answer within ${this.#timeoutMs} ms` };
    }
    // A socket error: its code (ECONNREFUSED, ECONNRESET, ENOTFOUND) says the most.
    const code = (err as { code?: string }).code;
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, permanent: false, errorClass: 'network', message: code && !message.includes(code) ? `${message} (${code})` : message };
  }

  #failed(idempotencyKey: string, result: WriteResult): WriteResult {
    if (!result.ok) {
      this.#logger.debug('HTTP request failed', {
        idempotency_key: idempotencyKey,
        error_class: result.errorClass,
        permanent: result.permanent,
        message: result.message,
      });
    }
    return result;
  }

  /** HEAD of the event URL answering below 500, or GET of healthUrl answering 2xx (as `status` probes it). */
  async healthCheck(): Promise<void> {
    const target = this.#healthUrl || this.#url;
    const method = this.#healthUrl ? 'GET' : 'HEAD';
    let res: Answer;
    try {
      res = await this.#transport.request(method, new URL(target), { 'user-agent': USER_AGENT }, undefined, this.#timeoutMs, 0);
    } catch (err) {
      const failure = this.#requestError(err);
      throw new Error(`HTTP sink health check: ${failure.ok ? 'failed' : failure.message}`);
    }
    const healthy = this.#healthUrl ? res.status >= 200 && res.status < 300 : res.status < 500;
    if (!healthy) throw new Error(`HTTP sink health check: ${method} ${redactUrl(target)} answered HTTP ${res.status}`);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    // Requests in flight end now, reported 'stopped' (retryable): the pipeline has not
    // committed their offsets, so they are sent again after a restart.
    this.#transport.stop();
  }
}

function headerOf(res: Answer, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

const OK: WriteResult = { ok: true };
const BLOCKED: WriteResult = {
  ok: false,
  permanent: false,
  errorClass: 'blocked',
  message: 'not sent: an earlier event of the same row failed and will be retried first',
};
const STOPPED: WriteResult = { ok: false, permanent: false, errorClass: 'stopped', message: 'HTTP sink stopped' };

/**
 * Idempotency-Key of a batch request: a stable hash (SHA-256, base64url) of the batch's ids
 * in order, so the same batch sent again carries the same key. The receiver also counts
 * (and can dedup) the ids inside the array, which stay right however a re-delivery is cut.
 */
export function batchIdempotencyKey(ids: string[]): string {
  return `batch-${createHash('sha256').update(JSON.stringify(ids)).digest('base64url')}`;
}

/** At most `size` holders at once; waiters are served first come, first served. */
class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}
