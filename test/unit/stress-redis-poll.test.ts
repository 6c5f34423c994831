import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REDIS_POLL_SHARE, redisPollDelay } from '../../src/core/stress/observers.js';

describe('stress-test: how often a Redis latency sample is polled', () => {
  it('every poll interval while the sample is young', () => {
    assert.equal(redisPollDelay(0, 10), 10);
    assert.equal(redisPollDelay(150, 10), 10);
    assert.equal(redisPollDelay(10 / REDIS_POLL_SHARE, 10), 10);
  });

  it('every 5 % of its age once that is longer, so the error stays within 5 % of the latency', () => {
    assert.equal(redisPollDelay(3_000, 10), 150);
    assert.equal(redisPollDelay(20_000, 10), 1_000);
  });

  it('polls a sample a bounded number of times however far behind the pipeline runs', () => {
    // Every poll interval, a sample 13 s old had been polled 1,300 times; with the share it grows with the log of its age.
    const polls = (latencyMs: number): number => {
      let n = 0;
      for (let age = 0; age < latencyMs; age += redisPollDelay(age, 10)) n++;
      return n;
    };
    assert.ok(polls(200) <= 21, `${polls(200)} polls to 200 ms`);
    assert.ok(polls(13_000) < 120, `${polls(13_000)} polls to 13 s`);
    assert.ok(polls(3_000) - polls(200) < 60, `${polls(3_000)} polls to 3 s`);
  });
});
