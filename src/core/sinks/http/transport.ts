import http from 'node:http';
import https from 'node:https';

/**
 * The HTTP sink's requests, on node:http with a keep-alive agent rather than fetch.
 *
 * Why not fetch: one event per request at thousands of events per second, and undici's
 * fetch costs several times more CPU per request (web streams, transferable bodies, abort
 * signals) — in bench:e2e it was a third of the streamctl process, which also runs capture
 * and the other sinks on the same event loop. Redirects are never followed (a signed POST is
 * not replayed elsewhere), as with fetch's `redirect: 'manual'`.
 */
export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
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
  #agents: { http: http.Agent; https: https.Agent };
  readonly #live = new Set<http.ClientRequest>();
  #stopped = false;

  constructor(maxSockets: number) {
    this.#maxSockets = maxSockets;
    this.#agents = this.#newAgents();
  }

  #newAgents(): { http: http.Agent; https: https.Agent } {
    const options = { keepAlive: true, maxSockets: this.#maxSockets, maxFreeSockets: this.#maxSockets };
    return { http: new http.Agent(options), https: new https.Agent(options) };
  }

  /** Resumes after stop() (a sink restarted in the same process). */
  restart(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#agents = this.#newAgents();
  }

  /**
   * One request; resolves with the answer whatever its status. Rejects with RequestTimeout
   * when the whole exchange (connect, send, answer, body) took longer than `timeoutMs`,
   * RequestStopped after stop(), or the socket's error (with its `code`: ECONNREFUSED...).
   */
  request(method: string, url: URL, headers: Record<string, string>, body: string | undefined, timeoutMs: number, keepBody: number): Promise<Answer> {
    if (this.#stopped) return Promise.reject(new RequestStopped('HTTP sink stopped'));
    const secure = url.protocol === 'https:';
    const send = secure ? https.request : http.request;
    return new Promise<Answer>((resolve, reject) => {
      const req = send(url, { method, headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) }, agent: secure ? this.#agents.https : this.#agents.http });
      this.#live.add(req);
      // A plain timer that holds the request. Not AbortSignal.any([AbortSignal.timeout(), ...]):
      // Node 20 can garbage-collect the timeout signal inside it before it fires
      // (nodejs/node#57736); a hanging upstream then held a request for as long as it liked.
      const timer = setTimeout(() => req.destroy(new RequestTimeout(`no answer within ${timeoutMs} ms`)), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#live.delete(req);
      };
      req.once('error', (err) => {
        done();
        reject(err);
      });
      req.once('response', (res) => {
        let text = '';
        // The status has arrived: a body cut short (deadline, reset) still gives the answer.
        const answered = () => {
          done();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < keepBody) text += chunk.slice(0, keepBody - text.length);
        });
        res.once('end', answered);
        res.once('error', answered);
        res.once('close', answered);
      });
      req.end(body);
    });
  }

  /** Ends every request in flight (RequestStopped) and closes idle connections. */
  stop(): void {
    this.#stopped = true;
    for (const req of this.#live) req.destroy(new RequestStopped('HTTP sink stopped'));
    this.#live.clear();
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }
}
