import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sign, verify } from '../../src/core/sinks/http/signature.js';

describe('HMAC request signature', () => {
  const key = 'k'.repeat(32);
  const body = '{"id":"c-0000000000000001-0"}';
  const now = 1_800_000_000;

  it('verifies what it signed', () => {
    assert.deepEqual(verify(key, body, sign(key, body, now), { nowSeconds: now }), { ok: true });
  });
  it('rejects a tampered body, a wrong key and a tampered time', () => {
    const header = sign(key, body, now);
    assert.deepEqual(verify(key, body.replace('0"', '1"'), header, { nowSeconds: now }), { ok: false, reason: 'mismatch' });
    assert.deepEqual(verify('other-key', body, header, { nowSeconds: now }), { ok: false, reason: 'mismatch' });
    assert.deepEqual(verify(key, body, header.replace(`t=${now}`, `t=${now + 1}`), { nowSeconds: now }), {
      ok: false,
      reason: 'mismatch',
    });
  });
  it('rejects a replay outside the tolerance, and missing or malformed headers', () => {
    assert.deepEqual(verify(key, body, sign(key, body, now - 301), { nowSeconds: now }), { ok: false, reason: 'stale' });
    assert.deepEqual(verify(key, body, undefined), { ok: false, reason: 'missing' });
    assert.deepEqual(verify(key, body, 't=abc,v1=zz'), { ok: false, reason: 'malformed' });
  });
});
