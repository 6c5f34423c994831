import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { SinkRecord } from '../../src/core/sinks/contract.js';
import { silentLogger } from '../../src/core/logger.js';
import { HttpSink, batchIdempotencyKey } from '../../src/core/sinks/http/sink.js';
import { parseRetryAfter } from '../../src/core/sinks/retry-after.js';

describe('HTTP sink: pure parts', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('reads Retry-After as seconds or as an HTTP date, never negative', () => {
    assert.equal(parseRetryAfter('7', now), 7000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now), 0);
    for (const bad of [null, undefined, '', 'soon', '-5', '1.5']) assert.equal(parseRetryAfter(bad, now), undefined, String(bad));
  });

  it('hashes a batch of ids stably, order and boundaries included', () => {
    assert.equal(batchIdempotencyKey(['a', 'b']), batchIdempotencyKey(['a', 'b']));
    assert.notEqual(batchIdempotencyKey(['a', 'b']), batchIdempotencyKey(['b', 'a']));
    assert.notEqual(batchIdempotencyKey(['a,b']), batchIdempotencyKey(['a', 'b']));
    assert.match(batchIdempotencyKey(['a']), /^batch-[A-Za-z0-9_-]{43}$/);
  });

  it('refuses to start without a key or with a nonsense size, without echoing the key', () => {
    const config = {
      enabled: true,
      url: 'http://127.0.0.1:1/',
      healthUrl: '',
      hmacKey: '',
      hmacKeyFile: '',
      timeoutMs: 1000,
      batchSize: 1,
      concurrency: 16,
      retry: { retries: 3, initialDelayMs: 1, maxDelayMs: 1 },
      breaker: { consecutiveFailures: 1, halfOpenAfterMs: 1 },
    };
    assert.throws(() => new HttpSink(config, '', silentLogger), /no HMAC key/);
    assert.throws(() => new HttpSink({ ...config, batchSize: 0 }, 'secret-key', silentLogger), (err: Error) => {
      assert.match(err.message, /batchSize must be a positive integer/);
      assert.ok(!err.message.includes('secret-key'));
      return true;
    });
  });

  it('start() checks the URL', async () => {
    const base = { enabled: true, healthUrl: '', hmacKey: '', hmacKeyFile: '', timeoutMs: 1000, batchSize: 1, concurrency: 16 };
    const policies = { retry: { retries: 3, initialDelayMs: 1, maxDelayMs: 1 }, breaker: { consecutiveFailures: 1, halfOpenAfterMs: 1 } };
    await assert.rejects(new HttpSink({ ...base, ...policies, url: 'not a url' }, 'k', silentLogger).start(), /sinks\.http\.url is not a URL/);
    await assert.rejects(new HttpSink({ ...base, ...policies, url: 'ftp://x/' }, 'k', silentLogger).start(), /must be http: or https:/);
  });
});

/** The garbage collector, without starting node with --expose-gc. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('HTTP sink: the request timeout holds under garbage collection', () => {
  // Regression: the timeout was AbortSignal.any([AbortSignal.timeout(ms), stop]); Node 20
  // can collect the inner timeout signal before it fires (nodejs/node#57736), and then a
  // request to a hanging upstream waited until the upstream dropped the socket. In the
  // crash run that held a chunk for 30 s, expelled the consumer from its group and stalled
  // the sink. A server that never answers plus a GC every few ms shows it at once.
  it('a hanging upstream is reported as a timeout after timeoutMs', async () => {
    const held: ServerResponse[] = [];
    const server = createServer((_req, res) => void held.push(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const sink = new HttpSink(
      {
        enabled: true,
        url: `http://127.0.0.1:${port}/events`,
        healthUrl: '',
        hmacKey: '',
        hmacKeyFile: '',
        timeoutMs: 300,
        batchSize: 1,
      concurrency: 16,
        retry: { retries: 0, initialDelayMs: 1, maxDelayMs: 1 },
        breaker: { consecutiveFailures: 1, halfOpenAfterMs: 1 },
      },
      'k',
      silentLogger,
    );
    await sink.start();
    const gc = collector();
    const pressure = setInterval(gc, 5);
    try {
      const records: SinkRecord[] = [1, 2, 3].map((n) => ({
        topic: 't',
        partition: 0,
        offset: String(n),
        event: { id: `e${n}`, schema: 'public', table: 't', key: { id: n }, op: 'insert' } as unknown as SinkRecord['event'],
      }));
      const started = Date.now();
      const results = await Promise.race([
        sink.write(records),
        new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 5000).unref()),
      ]);
      assert.notEqual(results, 'hung', 'the requests outlived their 300 ms timeout by seconds');
      assert.deepEqual(
        (results as Array<{ errorClass?: string }>).map((r) => r.errorClass),
        ['timeout', 'timeout', 'timeout'],
      );
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    } finally {
      clearInterval(pressure);
      await sink.stop();
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

});
