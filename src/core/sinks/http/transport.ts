import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';

/**
 * The HTTP sink's requests, on undici's Pool (keep-alive connections per origin, no
 * pipelining) rather than node:http or fetch.
 *
 * Why: one event per request at thousands of events per second. bench/http-client.ts, same
 * signed 881 B bodies, 16 in flight, one receiver, load average 2.4-3.7 on 2 cores: a
 * node:http keep-alive Agent cost the client 7.3 CPU s per 100k requests (the receiver
 * 3.8), this transport on undici's Pool 4.6 (the receiver 2.3), the whole sink's write 5.4.
 * fetch (undici's too) costs more than either: web streams, response objects. No
 * pipelining: a receiver that answers slowly would hold up the requests behind it on the
 * connection, proxies handle it badly, and it saved nothing in the bench (4.5-4.8, and more
 * for the receiver). Redirects are never followed (undici's request does not),
 * as a signed POST is not replayed elsewhere.
 */
export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The first `keepBody` characters of the body (the rest is read and dropped). */
  body: string;
}

/** Raised when the deadline passed: `name` is 'TimeoutError', as AbortSignal.timeout's. */
export class RequestTimeout extends Error {
  override readonly name = 'TimeoutError';
}

/** Raised for requests cut short by `stop()`: `name` is 'AbortError'. */
export class RequestStopped extends Error {
  override readonly name = 'AbortError';
}

export class HttpTransport {
  readonly #maxSockets: number;
  /** One pool per origin (the event URL and the health URL may differ). */
  readonly #pools = new Map<string, Pool>();
  readonly #live = new Set<AbortController>();
  #stopped = false;

  constructor(maxSockets: number) {
    this.#maxSockets = maxSockets;
  }

  #pool(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (!pool) this.#pools.set(origin, (pool = new Pool(origin, { connections: this.#maxSockets, pipelining: 1 })));
    return pool;
  }

  /** Resumes after stop() (a sink restarted in the same process). */
  restart(): void {
    this.#stopped = false;
  }

  /**
   * One request; resolves with the answer whatever its status. Rejects with RequestTimeout
   * when the whole exchange (connect, send, answer, body) took longer than `timeoutMs`,
   * RequestStopped after stop(), or the socket's error (with its `code`: ECONNREFUSED...).
   */
  async request(method: string, url: URL, headers: Record<string, string>, body: string | undefined, timeoutMs: number, keepBody: number): Promise<Answer> {
    if (this.#stopped) throw new RequestStopped('HTTP sink stopped');
    const abort = new AbortController();
    this.#live.add(abort);
    let timedOut = false;
    // A plain timer that holds the request. Not AbortSignal.timeout(): Node 20 can
    // garbage-collect a timeout signal before it fires (nodejs/node#57736), and a hanging
    // upstream then held a request for as long as it liked.
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, timeoutMs);
    try {
      const res = await this.#pool(url.origin).request({
        method: method as 'POST',
        path: `${url.pathname}${url.search}`,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: abort.signal,
        // The deadline above covers the whole exchange; these only back it up.
        headersTimeout: timeoutMs + 1000,
        bodyTimeout: timeoutMs + 1000,
      });
      // The status has arrived: a body cut short (deadline, reset) still gives the answer.
      const text = await new Promise<string>((resolve) => {
        let kept = '';
        const stream = res.body;
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => {
          if (kept.length < keepBody) kept += chunk.slice(0, keepBody - kept.length);
        });
        stream.once('end', () => resolve(kept));
        stream.once('error', () => resolve(kept));
        stream.once('close', () => resolve(kept));
      });
      return { status: res.statusCode, headers: res.headers as IncomingHttpHeaders, body: text };
    } catch (err) {
      if (timedOut) throw new RequestTimeout(`no answer within ${timeoutMs} ms`);
      if (this.#stopped) throw new RequestStopped('HTTP sink stopped');
      throw err;
    } finally {
      clearTimeout(timer);
      this.#live.delete(abort);
    }
  }

  /** Ends every request in flight (RequestStopped) and closes the connections. */
  stop(): void {
    this.#stopped = true;
    for (const abort of this.#live) abort.abort();
    this.#live.clear();
    for (const pool of this.#pools.values()) void pool.destroy().catch(() => {});
    this.#pools.clear();
  }
}
