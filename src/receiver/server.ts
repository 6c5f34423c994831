import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify } from '../core/sinks/http/signature.js';
import { type Fault, type FaultPlan, noFaults, parseFaultPlan, pickFault } from './faults.js';

/**
 * The external system of the local stack: a small HTTP server that accepts signed events,
 * verifies the HMAC, and honours Idempotency-Key as an idempotent API does: a request whose
 * key it already accepted is answered 200 again as a replay and not processed twice. It
 * counts every event id it processed (`/_keys`); an event processed under two different
 * request keys is a duplicate, which crash tests count. It can be told to fail.
 *
 *   POST <any path>      an event (or a JSON array of events), signed
 *   GET  /health         200 when up
 *   GET  /_stats         counters
 *   GET  /_keys          every accepted Idempotency-Key with its count
 *   GET  /_recent?n=10   the last accepted bodies
 *   POST /_control       {"rates":{"5xx":0.1},"next":["429"],"retryAfterSeconds":1}
 *   POST /_reset         forget everything, no faults
 */

export interface ReceiverOptions {
  hmacKey: string;
  /** Called with each accepted request, for a request log. */
  onAccepted?: (record: { key: string; at: string; body: unknown }) => void;
  /** How long a 'hang' holds the request before dropping the socket. */
  hangMs?: number;
  recentLimit?: number;
  maxBodyBytes?: number;
}

export interface ReceiverStats {
  requests: number;
  /** Events processed (a batch counts each event). */
  accepted: number;
  /** Distinct event ids processed. */
  unique_keys: number;
  /** Events processed a second time under another request key. */
  duplicates: number;
  /** Requests whose Idempotency-Key was already accepted: answered, not processed again. */
  replays: number;
  rejected: { signature: number; missing_key: number; bad_json: number; too_large: number };
  faults: Record<Fault, number>;
}

export class HttpReceiver {
  private readonly server: Server;
  private readonly keys = new Map<string, number>();
  private readonly requestKeys = new Set<string>();
  private recent: unknown[] = [];
  private plan: FaultPlan = noFaults();
  private stats!: ReceiverStats;
  private readonly hanging = new Set<ServerResponse>();

  constructor(private readonly options: ReceiverOptions) {
    this.reset();
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.send(res, 500, { error: String(err) }));
    });
  }

  listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private reset(): void {
    this.keys.clear();
    this.requestKeys.clear();
    this.recent = [];
    this.plan = noFaults();
    this.stats = {
      requests: 0,
      accepted: 0,
      unique_keys: 0,
      duplicates: 0,
      replays: 0,
      rejected: { signature: 0, missing_key: 0, bad_json: 0, too_large: 0 },
      faults: { '5xx': 0, '429': 0, '4xx': 0, hang: 0 },
    };
  }

  private send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private async readBody(req: IncomingMessage): Promise<Buffer | null> {
    const limit = this.options.maxBodyBytes ?? 16 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limit) return null;
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://receiver');
    if (req.method === 'GET' && url.pathname === '/health') return this.send(res, 200, { ok: true });
    if (req.method === 'HEAD') {
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && url.pathname === '/_stats') return this.send(res, 200, this.stats);
    if (req.method === 'GET' && url.pathname === '/_keys') return this.send(res, 200, { keys: Object.fromEntries(this.keys) });
    if (req.method === 'GET' && url.pathname === '/_recent') {
      const n = Math.max(1, Math.min(1000, Number(url.searchParams.get('n') ?? 10) || 10));
      return this.send(res, 200, { recent: this.recent.slice(-n) });
    }
    if (req.method === 'POST' && url.pathname === '/_reset') {
      this.reset();
      return this.send(res, 200, { ok: true });
    }
    if (req.method === 'POST' && url.pathname === '/_control') {
      const body = await this.readBody(req);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body?.toString('utf8') ?? '');
      } catch {
        return this.send(res, 400, { error: 'body must be JSON' });
      }
      const plan = parseFaultPlan(parsed);
      if (typeof plan === 'string') return this.send(res, 400, { error: plan });
      this.plan = plan;
      return this.send(res, 200, { ok: true, plan });
    }
    if (req.method !== 'POST') return this.send(res, 405, { error: 'method not allowed' }, { allow: 'POST' });
    return this.receiveEvent(req, res);
  }

  private async receiveEvent(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    const body = await this.readBody(req);
    if (body === null) {
      this.stats.rejected.too_large++;
      return this.send(res, 413, { error: 'body too large' });
    }
    const check = verify(this.options.hmacKey, body, header(req, SIGNATURE_HEADER));
    if (!check.ok) {
      this.stats.rejected.signature++;
      return this.send(res, 401, { error: `signature ${check.reason}` });
    }
    const key = header(req, IDEMPOTENCY_HEADER);
    if (!key) {
      this.stats.rejected.missing_key++;
      return this.send(res, 400, { error: 'Idempotency-Key header is required' });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      this.stats.rejected.bad_json++;
      return this.send(res, 400, { error: 'body must be JSON' });
    }
    // As a real idempotent API: a request it already accepted is answered as accepted before
    // anything else can fail it, so a replay is never dead-lettered by an injected fault.
    if (this.requestKeys.has(key)) {
      this.stats.replays++;
      return this.send(res, 200, { ok: true, replay: true });
    }
    const fault = pickFault(this.plan, Math.random());
    if (fault) {
      this.stats.faults[fault]++;
      switch (fault) {
        case '5xx':
          return this.send(res, 503, { error: 'injected: service unavailable' });
        case '429':
          return this.send(res, 429, { error: 'injected: slow down' }, { 'retry-after': String(this.plan.retryAfterSeconds) });
        case '4xx':
          return this.send(res, 422, { error: 'injected: unprocessable event' });
        case 'hang': {
          // Hold the request open, as a stuck upstream does, until the client gives up.
          this.hanging.add(res);
          const timer = setTimeout(() => res.destroy(), this.options.hangMs ?? 120_000);
          res.on('close', () => {
            clearTimeout(timer);
            this.hanging.delete(res);
          });
          return;
        }
      }
    }
    this.requestKeys.add(key);
    // A batch carries each event's own id; a single event is counted by its header.
    const ids = Array.isArray(parsed) ? parsed.map((e) => String((e as { id?: unknown }).id ?? '')) : [key];
    for (const id of ids) {
      const seen = this.keys.get(id) ?? 0;
      this.keys.set(id, seen + 1);
      if (seen === 0) this.stats.unique_keys++;
      else this.stats.duplicates++;
      this.stats.accepted++;
    }
    this.recent.push(parsed);
    if (this.recent.length > (this.options.recentLimit ?? 100)) this.recent.shift();
    this.options.onAccepted?.({ key, at: new Date().toISOString(), body: parsed });
    return this.send(res, 200, { ok: true });
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
