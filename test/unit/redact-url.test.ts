import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactUrl } from '../../src/core/redact-url.js';

describe('redactUrl', () => {
  it('shows basic-auth userinfo as a readable [redacted], never the user or password', () => {
    const shown = redactUrl('http://svc-user:pw-SECRET@127.0.0.1:8080/events?x=1');
    assert.equal(shown, 'http://[redacted]@127.0.0.1:8080/events?x=1');
    assert.doesNotMatch(shown, /svc-user|pw-SECRET|%5B/);
    assert.equal(redactUrl('http://:only-password@h/'), 'http://h/');
  });

  it('leaves a URL without userinfo as it is, and never echoes text that is not a URL', () => {
    assert.equal(redactUrl('http://127.0.0.1:18080/events'), 'http://127.0.0.1:18080/events');
    assert.equal(redactUrl('hunter2'), '(not a URL)');
  });
});
