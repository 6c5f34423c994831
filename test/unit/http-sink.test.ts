import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import { HttpSink, batchIdempotencyKey, parseRetryAfter } from '../../src/core/sinks/http.js';

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
    const base = { enabled: true, healthUrl: '', hmacKey: '', hmacKeyFile: '', timeoutMs: 1000, batchSize: 1 };
    const policies = { retry: { retries: 3, initialDelayMs: 1, maxDelayMs: 1 }, breaker: { consecutiveFailures: 1, halfOpenAfterMs: 1 } };
    await assert.rejects(new HttpSink({ ...base, ...policies, url: 'not a url' }, 'k', silentLogger).start(), /sinks\.http\.url is not a URL/);
    await assert.rejects(new HttpSink({ ...base, ...policies, url: 'ftp://x/' }, 'k', silentLogger).start(), /must be http: or https:/);
  });
});
