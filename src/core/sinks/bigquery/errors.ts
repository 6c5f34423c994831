import type { WriteResult } from '../contract.js';
import { parseRetryAfter } from '../retry-after.js';

/**
 * What a BigQuery failure means for the pipeline: retryable or not, its errorClass, and
 * whether splitting the batch may isolate a bad row (./bisection.ts).
 */

export type Failure = Extract<WriteResult, { ok: false }>;

/** How a whole-call failure is handled: the class and whether splitting the batch may isolate a bad row. */
export interface CallFailure {
  failure: Failure;
  /** Splitting can help: the request (or one row in it) was refused, not the service down. */
  bisect: boolean;
  /** For a lone row: the failure says the row itself is bad, without further evidence. */
  rowIsBad: boolean;
}

interface ErrorShape {
  code?: unknown;
  type?: unknown;
  name?: unknown;
  message?: unknown;
  errors?: { reason?: unknown; message?: unknown }[];
  response?: { headers?: Record<string, unknown> };
}

const RETRYABLE_REASONS = new Set(['backendError', 'internalError', 'timeout', 'stopped', 'rateLimitExceeded', 'quotaExceeded']);

/** Maps one insertError reason of one row. */
export function classifyRowError(reason: string, message: string): Failure {
  if (reason === 'invalid') return { ok: false, permanent: true, errorClass: 'invalid_row', message };
  return { ok: false, permanent: false, errorClass: RETRYABLE_REASONS.has(reason) ? `row_${reason}` : `row_${reason || 'error'}`, message };
}

/**
 * Maps an insertAll call that failed as a whole.
 * - 400 (invalid) and 413 (too large): the request was refused; one record alone is
 *   a permanent 'invalid_row'/'row_too_large', more are bisected.
 * - 500: BigQuery's transient internal error, but also how the emulator answers one
 *   badly typed row; bisected, and a lone row is only called bad with more evidence.
 * - ECONNRESET: a reset connection, but also how the emulator answers some bad rows
 *   (it drops the connection); handled as a 500.
 * - 401/403/404 (credentials, permissions, missing table), 408, 429, 502-504, other
 *   network errors and timeouts: retryable, never bisected (the next call fares the same);
 *   a 403 or 404 is not the event's fault, so it opens the circuit rather than fill the DLQ.
 */
export function classifyCallError(error: unknown): CallFailure {
  const e = (typeof error === 'object' && error !== null ? error : {}) as ErrorShape;
  const message = typeof e.message === 'string' ? e.message : String(error);
  const reason = typeof e.errors?.[0]?.reason === 'string' ? e.errors[0].reason : '';
  const retry = (errorClass: string, bisect = false): CallFailure => ({
    failure: { ok: false, permanent: false, errorClass, message },
    bisect,
    rowIsBad: false,
  });
  if (typeof e.code === 'number') {
    const status = e.code;
    if (status === 400) {
      if (reason === 'rateLimitExceeded' || reason === 'quotaExceeded') return retry(`http_400_${reason}`);
      return { failure: { ok: false, permanent: true, errorClass: 'invalid_row', message }, bisect: true, rowIsBad: true };
    }
    if (status === 413) return { failure: { ok: false, permanent: true, errorClass: 'row_too_large', message }, bisect: true, rowIsBad: true };
    if (status === 500) return retry('http_500', true);
    const failure = retry(`http_${status}`);
    if (status === 429 || status === 503) {
      const header = e.response?.headers?.['retry-after'];
      const retryAfterMs = parseRetryAfter(typeof header === 'string' ? header : typeof header === 'number' ? String(header) : undefined);
      if (retryAfterMs !== undefined) failure.failure.retryAfterMs = retryAfterMs;
    }
    return failure;
  }
  const code = typeof e.code === 'string' ? e.code : '';
  if (code === 'ECONNRESET') return retry('network', true);
  if (code === 'ETIMEDOUT' || e.type === 'request-timeout' || e.name === 'AbortError' || /timed? ?out/i.test(message)) return retry('timeout');
  if (code || e.type === 'system' || e.name === 'FetchError') return retry('network');
  return retry('error');
}

/**
 * Runs `call` again, once, when it failed on a reset connection. The client keeps
 * connections alive; a server that closed one (the emulator closes it after every 500)
 * makes the next request on it fail at once with ECONNRESET ('socket hang up'), before
 * the server saw it. A genuine reset fails twice and is classified then. Re-sending an
 * insert is safe: rows carry their insertId and the views show each event once.
 */
export async function onceMoreOnReset<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== 'ECONNRESET') throw error;
    return call();
  }
}
