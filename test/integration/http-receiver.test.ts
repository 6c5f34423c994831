import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { sign } from '../../src/core/sinks/http/signature.js';
import { HttpReceiver } from '../../src/receiver/server.js';
import { stackConfig } from '../helpers/stack.js';

const KEY = 'receiver-test-key-0123456789abcdef';

async function post(url: string, body: string, headers: Record<string, string>): Promise<Response> {
  return fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
}

describe('HTTP receiver (a real server on loopback)', () => {
  const receiver = new HttpReceiver({ hmacKey: KEY, hangMs: 2000 });
  let base = '';
  before(async () => {
    const address = await receiver.listen(0);
    base = `http://127.0.0.1:${address.port}`;
  });
  after(() => receiver.close());

  const event = (id: string) => JSON.stringify({ id, op: 'insert' });

  it('accepts a signed request once: a repeated Idempotency-Key is a replay, not processed again', async () => {
    for (let i = 0; i < 2; i++) {
      const body = event('e-1');
      const res = await post(`${base}/events`, body, { 'x-streamctl-signature': sign(KEY, body), 'idempotency-key': 'e-1' });
      assert.equal(res.status, 200);
    }
    const stats = (await (await fetch(`${base}/_stats`)).json()) as { accepted: number; unique_keys: number; duplicates: number; replays: number };
    assert.deepEqual([stats.accepted, stats.unique_keys, stats.duplicates, stats.replays], [1, 1, 0, 1]);
    const keys = (await (await fetch(`${base}/_keys`)).json()) as { keys: Record<string, number> };
    assert.equal(keys.keys['e-1'], 1);
  });

  it('counts an event processed under two different request keys as a duplicate', async () => {
    const batch = JSON.stringify([{ id: 'b-1' }, { id: 'b-2' }]);
    await post(`${base}/events`, batch, { 'x-streamctl-signature': sign(KEY, batch), 'idempotency-key': 'batch-a' });
    const again = JSON.stringify([{ id: 'b-2' }, { id: 'b-3' }]);
    await post(`${base}/events`, again, { 'x-streamctl-signature': sign(KEY, again), 'idempotency-key': 'batch-b' });
    const stats = (await (await fetch(`${base}/_stats`)).json()) as { duplicates: number };
    assert.equal(stats.duplicates, 1);
  });

  it('rejects a tampered body, a wrong key and an unsigned request with 401', async () => {
    const body = event('e-2');
    const signature = sign(KEY, body);
    const tampered = await post(`${base}/events`, body.replace('insert', 'delete'), { 'x-streamctl-signature': signature, 'idempotency-key': 'e-2' });
    const wrongKey = await post(`${base}/events`, body, { 'x-streamctl-signature': sign('not-the-key', body), 'idempotency-key': 'e-2' });
    const unsigned = await post(`${base}/events`, body, { 'idempotency-key': 'e-2' });
    assert.deepEqual([tampered.status, wrongKey.status, unsigned.status], [401, 401, 401]);
    const keys = (await (await fetch(`${base}/_keys`)).json()) as { keys: Record<string, number> };
    assert.equal(keys.keys['e-2'], undefined, 'a rejected request must not count as delivered');
  });

  it('answers a replay of an accepted Idempotency-Key as accepted, before any injected fault', async () => {
    const body = event('e-5');
    const send = () => post(`${base}/events`, body, { 'x-streamctl-signature': sign(KEY, body), 'idempotency-key': 'e-5' });
    assert.equal((await send()).status, 200);
    await post(`${base}/_control`, JSON.stringify({ next: ['4xx'] }), {});
    const replay = await send();
    assert.equal(replay.status, 200, 'a replay of an accepted event must never be failed (it would be dead-lettered)');
    assert.deepEqual(await replay.json(), { ok: true, replay: true });
    const other = event('e-6');
    const fresh = await post(`${base}/events`, other, { 'x-streamctl-signature': sign(KEY, other), 'idempotency-key': 'e-6' });
    assert.equal(fresh.status, 422, 'the fault is still there for the next new event');
  });

  it('requires an Idempotency-Key', async () => {
    const body = event('e-3');
    const res = await post(`${base}/events`, body, { 'x-streamctl-signature': sign(KEY, body) });
    assert.equal(res.status, 400);
  });

  it('fails on command: 5xx, 429 with Retry-After, 4xx, then hangs until dropped', async () => {
    const control = await post(`${base}/_control`, JSON.stringify({ next: ['5xx', '429', '4xx', 'hang'], retryAfterSeconds: 7 }), {});
    assert.equal(control.status, 200);
    const send = () => {
      const body = event('e-4');
      return post(`${base}/events`, body, { 'x-streamctl-signature': sign(KEY, body), 'idempotency-key': 'e-4' });
    };
    assert.equal((await send()).status, 503);
    const throttled = await send();
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers.get('retry-after'), '7');
    assert.equal((await send()).status, 422);
    const started = Date.now();
    await assert.rejects(send(), /fetch failed|other side closed|socket/i);
    assert.ok(Date.now() - started >= 1500, 'the hang answered too soon');
    assert.equal((await send()).status, 200, 'after the script, requests succeed again');
  });
});

describe('HTTP receiver started by scripts/stack', () => {
  it('answers on the configured URL and verifies with the key file the stack wrote', async () => {
    const http = stackConfig().sinks.http;
    const key = readFileSync(http.hmacKeyFile, 'utf8').trim();
    const body = JSON.stringify({ id: `stack-check-${Date.now()}` });
    const good = await post(http.url, body, { 'x-streamctl-signature': sign(key, body), 'idempotency-key': 'stack-check' });
    assert.equal(good.status, 200);
    const bad = await post(http.url, body, { 'x-streamctl-signature': sign(`${key}x`, body), 'idempotency-key': 'stack-check' });
    assert.equal(bad.status, 401);
  });
});
