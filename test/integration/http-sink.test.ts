import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { HttpSinkConfig } from '../../src/core/config/types.js';
import type { SinkRecord, WriteResult } from '../../src/core/sinks/contract.js';
import type { ChangeEvent } from '../../src/core/event/envelope.js';
import { type Logger, silentLogger } from '../../src/core/logger.js';
import { HttpSink, USER_AGENT, batchIdempotencyKey } from '../../src/core/sinks/http/sink.js';
import { verify } from '../../src/core/sinks/http/signature.js';
import { HttpReceiver } from '../../src/receiver/server.js';

const KEY = 'http-sink-test-key-0123456789abcdef';

function config(url: string, overrides: Partial<HttpSinkConfig> = {}): HttpSinkConfig {
  return {
    enabled: true,
    url,
    healthUrl: '',
    hmacKey: '',
    hmacKeyFile: '',
    timeoutMs: 2000,
    batchSize: 1,
    concurrency: 16,
    retry: { retries: 3, initialDelayMs: 100, maxDelayMs: 1000 },
    breaker: { consecutiveFailures: 5, halfOpenAfterMs: 1000 },
    ...overrides,
  };
}

let seq = 0;
function record(id: string, row = id): SinkRecord {
  const offset = String(seq++);
  const event: ChangeEvent = {
    id,
    version: 1,
    op: 'insert',
    schema: 'public',
    table: 'orders',
    key: { id: row },
    before: null,
    after: { id: row, total: '12.50', note: 'ünïcødé ✓' },
    lsn: '0/16B3748',
    position: Number(offset),
    xid: 1234,
    commit_ts: '2025-01-01T00:00:00.000000Z',
    source: { pipeline: 'test', db: 'app', kind: 'cdc', slot: 'streamctl_test' },
  };
  return { event, topic: 'streamctl.changes', partition: 0, offset };
}

/** Records every line logged, to prove the key never shows up. */
function capturingLogger(lines: string[]): Logger {
  const log = (message: string, fields?: Record<string, unknown>) => lines.push(`${message} ${JSON.stringify(fields ?? {})}`);
  const logger: Logger = { debug: log, info: log, warn: log, error: log, child: () => logger };
  return logger;
}

const failure = (r: WriteResult | undefined) => {
  assert.ok(r && !r.ok, `expected a failure, got ${JSON.stringify(r)}`);
  return r;
};

describe('HTTP sink against the receiver (a real server on loopback)', () => {
  const receiver = new HttpReceiver({ hmacKey: KEY, hangMs: 10_000 });
  let base = '';
  let url = '';
  const logged: string[] = [];

  before(async () => {
    const address = await receiver.listen(0);
    base = `http://127.0.0.1:${address.port}`;
    url = `${base}/events`;
  });
  after(() => receiver.close());
  beforeEach(async () => {
    await fetch(`${base}/_reset`, { method: 'POST' });
  });

  const control = async (plan: unknown) => {
    const res = await fetch(`${base}/_control`, { method: 'POST', body: JSON.stringify(plan) });
    assert.equal(res.status, 200);
  };
  const keys = async () => ((await (await fetch(`${base}/_keys`)).json()) as { keys: Record<string, number> }).keys;
  const stats = async () => (await (await fetch(`${base}/_stats`)).json()) as { requests: number; accepted: number; duplicates: number; replays: number };

  it('sends signed events the receiver accepts, one per request, counted by Idempotency-Key = event id', async () => {
    const sink = new HttpSink(config(url), KEY, capturingLogger(logged));
    await sink.start();
    const records = ['c-1', 'c-2', 'c-3'].map((id) => record(id));
    assert.deepEqual(await sink.write(records), [{ ok: true }, { ok: true }, { ok: true }]);
    assert.deepEqual(await keys(), { 'c-1': 1, 'c-2': 1, 'c-3': 1 });
    // A re-delivery carries the same key: the receiver answers it as a replay, once processed.
    assert.deepEqual(await sink.write(records.slice(0, 1)), [{ ok: true }]);
    assert.equal((await keys())['c-1'], 1);
    assert.equal((await stats()).replays, 1);
    assert.equal((await stats()).duplicates, 0);
    await sink.stop();
  });

  it('maps a script of faults to results: 5xx and 429 retryable (with Retry-After), 4xx permanent, a hang times out', async () => {
    const sink = new HttpSink(config(url, { timeoutMs: 300 }), KEY, capturingLogger(logged));
    await control({ next: ['5xx', '429', '4xx', 'hang'], retryAfterSeconds: 7 });
    const results: WriteResult[] = [];
    // One write each, so the script meets the records in a known order.
    for (const id of ['f-1', 'f-2', 'f-3', 'f-4', 'f-5']) results.push(...(await sink.write([record(id)])));

    const [r5xx, r429, r4xx, rHang] = results.slice(0, 4).map(failure);
    assert.deepEqual([r5xx?.permanent, r5xx?.errorClass, r5xx?.retryAfterMs], [false, 'http_503', undefined]);
    assert.deepEqual([r429?.permanent, r429?.errorClass, r429?.retryAfterMs], [false, 'http_429', 7000]);
    assert.deepEqual([r4xx?.permanent, r4xx?.errorClass], [true, 'http_422']);
    assert.match(r4xx?.message ?? '', /^HTTP 422: .*injected: unprocessable event/);
    assert.deepEqual([rHang?.permanent, rHang?.errorClass], [false, 'timeout']);
    assert.match(rHang?.message ?? '', /300 ms/);
    assert.deepEqual(results[4], { ok: true }, 'after the script, requests succeed again');
    assert.deepEqual(await keys(), { 'f-5': 1 }, 'a failed request is not counted as delivered');
    await sink.stop();
  });

  it('batch mode: POSTs arrays of up to batchSize events; every id inside is counted once', async () => {
    const sink = new HttpSink(config(url, { batchSize: 10 }), KEY, capturingLogger(logged));
    const records = Array.from({ length: 25 }, (_, i) => record(`b-${i}`));
    const results = await sink.write(records);
    assert.equal(results.length, 25);
    assert.ok(results.every((r) => r.ok));
    const counted = await keys();
    assert.equal(Object.keys(counted).length, 25);
    assert.ok(records.every((r) => counted[r.event.id] === 1));
    assert.equal((await stats()).requests, 3, '25 events in batches of 10 are 3 requests');
  });

  it('batch mode: a failed batch fails each of its records, and only those', async () => {
    const sink = new HttpSink(config(url, { batchSize: 4 }), KEY, silentLogger);
    await control({ next: ['5xx'] });
    const records = Array.from({ length: 10 }, (_, i) => record(`bf-${i}`));
    const results = await sink.write(records);
    const failed = records.filter((_, i) => !results[i]?.ok).map((r) => r.event.id);
    assert.ok(failed.length === 4 || failed.length === 2, `one batch of 4 or the last of 2 fails, got ${failed}`);
    for (const i of results.keys()) if (!results[i]?.ok) assert.equal(failure(results[i]).errorClass, 'http_503');
    const counted = await keys();
    assert.deepEqual(
      records.map((r) => r.event.id).filter((id) => counted[id] === 1),
      records.map((r) => r.event.id).filter((id) => !failed.includes(id)),
    );
  });

  it('under concurrency, results come back in record order and match what the receiver got', async () => {
    const sink = new HttpSink(config(url), KEY, silentLogger, { concurrency: 16 });
    await control({ next: ['5xx', '4xx', '429'], retryAfterSeconds: 1 });
    const records = Array.from({ length: 200 }, (_, i) => record(`o-${i}`));
    const results = await sink.write(records);
    assert.equal(results.length, 200);
    const counted = await keys();
    records.forEach((r, i) => {
      const landed = counted[r.event.id] === 1;
      assert.equal(results[i]?.ok, landed, `result ${i} (${r.event.id}) says ok=${results[i]?.ok}, receiver says ${landed}`);
    });
    const failures = results.filter((r) => !r.ok).map((r) => (r.ok ? '' : r.errorClass));
    assert.deepEqual(failures.sort(), ['http_422', 'http_429', 'http_503']);
    assert.equal((await stats()).requests, 200);
  });

  it('never sends a row ahead of its earlier event that failed retryably (reported blocked); after a permanent failure it goes on', async () => {
    const sink = new HttpSink(config(url), KEY, silentLogger);
    await control({ next: ['5xx'] });
    const results = await sink.write([record('r-1', 'row-A'), record('r-2', 'row-A')]);
    assert.equal(failure(results[0]).errorClass, 'http_503');
    assert.deepEqual([failure(results[1]).errorClass, failure(results[1]).permanent], ['blocked', false]);
    assert.deepEqual(await keys(), {});

    await control({ next: ['4xx'] });
    const again = await sink.write([record('r-3', 'row-B'), record('r-4', 'row-B')]);
    assert.equal(failure(again[0]).permanent, true);
    assert.deepEqual(again[1], { ok: true });
  });

  it('a wrong key gets 401: permanent http_401, and the key shows up in no message or log line', async () => {
    const lines: string[] = [];
    const wrongKey = 'not-the-right-key-but-still-a-secret';
    const sink = new HttpSink(config(url), wrongKey, capturingLogger(lines));
    await sink.start();
    const [result] = await sink.write([record('w-1')]);
    const r = failure(result);
    assert.deepEqual([r.permanent, r.errorClass], [true, 'http_401']);
    assert.match(r.message, /signature mismatch/);
    assert.ok(lines.length > 0);
    for (const text of [r.message, ...lines, ...logged]) {
      assert.ok(!text.includes(wrongKey) && !text.includes(KEY), `secret leaked: ${text}`);
    }
  });

  it('a refused connection is a retryable network error; health checks pass and fail', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/events`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const dead = new HttpSink(config(deadUrl, { timeoutMs: 1000 }), KEY, silentLogger);
    const r = failure((await dead.write([record('n-1')]))[0]);
    assert.deepEqual([r.permanent, r.errorClass], [false, 'network']);
    assert.match(r.message, /ECONNREFUSED/);
    await assert.rejects(dead.healthCheck(), /HTTP sink health check: .*ECONNREFUSED/);

    await new HttpSink(config(url), KEY, silentLogger).healthCheck();
    await new HttpSink(config(url, { healthUrl: `${base}/health` }), KEY, silentLogger).healthCheck();
    await assert.rejects(
      new HttpSink(config(url, { healthUrl: `${base}/no-such-page` }), KEY, silentLogger).healthCheck(),
      /answered HTTP 405/,
    );
  });
});

describe('HTTP sink request shape (a raw server that records headers)', () => {
  const seen: { headers: IncomingHttpHeaders; body: Buffer }[] = [];
  let status = 200;
  let extraHeaders: Record<string, string> = {};
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(status, extraHeaders).end('x'.repeat(500));
    });
  });
  let url = '';
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/in`;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends JSON, the User-Agent, the event id as Idempotency-Key and a signature over the exact bytes', async () => {
    seen.length = 0;
    status = 200;
    const r = record('h-1');
    await new HttpSink(config(url), KEY, silentLogger).write([r]);
    const got = seen[0];
    assert.ok(got);
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.headers['user-agent'], USER_AGENT);
    assert.match(USER_AGENT, /^streamctl\/\d+\.\d+\.\d+/);
    assert.equal(got.headers['idempotency-key'], 'h-1');
    assert.deepEqual(verify(KEY, got.body, got.headers['x-streamctl-signature'] as string), { ok: true });
    assert.deepEqual(JSON.parse(got.body.toString('utf8')), r.event);
  });

  it('a batch carries a stable hash of its ids as Idempotency-Key', async () => {
    seen.length = 0;
    status = 200;
    const records = ['k-1', 'k-2', 'k-3'].map((id) => record(id));
    const sink = new HttpSink(config(url, { batchSize: 3 }), KEY, silentLogger);
    await sink.write(records);
    await sink.write(records);
    const [a, b] = seen;
    assert.ok(a && b);
    assert.equal(a.headers['idempotency-key'], batchIdempotencyKey(['k-1', 'k-2', 'k-3']));
    assert.equal(a.headers['idempotency-key'], b.headers['idempotency-key']);
    assert.notEqual(batchIdempotencyKey(['k-1', 'k-2']), batchIdempotencyKey(['k-2', 'k-1']));
    assert.deepEqual(
      (JSON.parse(a.body.toString('utf8')) as ChangeEvent[]).map((e) => e.id),
      ['k-1', 'k-2', 'k-3'],
    );
  });

  it('408 is retryable with an HTTP-date Retry-After; other 4xx carry the first 200 chars of the body; redirects are not followed', async () => {
    status = 408;
    extraHeaders = { 'retry-after': new Date(Date.now() + 60_000).toUTCString() };
    const sink = new HttpSink(config(url), KEY, silentLogger);
    const r408 = failure((await sink.write([record('t-1')]))[0]);
    assert.deepEqual([r408.permanent, r408.errorClass], [false, 'http_408']);
    assert.ok(r408.retryAfterMs !== undefined && r408.retryAfterMs > 55_000 && r408.retryAfterMs <= 60_000, String(r408.retryAfterMs));

    status = 404;
    extraHeaders = {};
    const r404 = failure((await sink.write([record('t-2')]))[0]);
    assert.deepEqual([r404.permanent, r404.errorClass], [true, 'http_404']);
    assert.equal(r404.message, `HTTP 404: ${'x'.repeat(200)}`);

    status = 302;
    extraHeaders = { location: 'http://user:pw@elsewhere.example/in' };
    const before = seen.length;
    const r302 = failure((await sink.write([record('t-3')]))[0]);
    assert.deepEqual([r302.permanent, r302.errorClass], [true, 'http_302']);
    assert.ok(!r302.message.includes('pw'));
    assert.equal(seen.length, before + 1, 'the redirect was not followed');
    extraHeaders = {};
    status = 200;
  });

  it('keeps at most `concurrency` requests in flight, answers arriving in any order still map to their records', async () => {
    let inFlight = 0;
    let most = 0;
    const slow = createServer((req, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      const n = Number(String(req.headers['idempotency-key']).slice(2));
      // Later requests answer sooner; every third one fails.
      setTimeout(() => {
        inFlight--;
        res.writeHead(n % 3 === 0 ? 503 : 200).end();
      }, 5 + ((60 - n) % 13) * 3);
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`;
    const results = await new HttpSink(config(slowUrl), KEY, silentLogger, { concurrency: 8 }).write(
      Array.from({ length: 60 }, (_, i) => record(`q-${i}`)),
    );
    assert.equal(most, 8);
    results.forEach((r, i) => assert.equal(r.ok, i % 3 !== 0, `record ${i}`));
    slow.closeAllConnections();
    await new Promise<void>((resolve) => slow.close(() => resolve()));
  });

  it('stop() ends requests in flight as retryable, and later writes are refused the same way', async () => {
    const hangs = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((resolve) => hangs.listen(0, '127.0.0.1', resolve));
    const hangUrl = `http://127.0.0.1:${(hangs.address() as AddressInfo).port}/`;
    const sink = new HttpSink(config(hangUrl, { timeoutMs: 10_000 }), KEY, silentLogger);
    const pending = sink.write([record('s-1')]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await sink.stop();
    const r = failure((await pending)[0]);
    assert.deepEqual([r.permanent, r.errorClass], [false, 'stopped']);
    assert.equal(failure((await sink.write([record('s-2')]))[0]).errorClass, 'stopped');
    hangs.closeAllConnections();
    await new Promise<void>((resolve) => hangs.close(() => resolve()));
  });
});
