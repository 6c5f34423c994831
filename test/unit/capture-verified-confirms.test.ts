import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VerifiedConfirms } from '../../src/core/capture/verified-confirms.js';

const make = (startEventsTotal: number) => {
  const confirmed: bigint[] = [];
  return { confirmed, v: new VerifiedConfirms(startEventsTotal, (lsn) => confirmed.push(lsn)) };
};

describe('capture confirms only what Kafka shows again', () => {
  it('an LSN covered by what Kafka already showed (the start checkpoint) is confirmed at once', () => {
    const { v, confirmed } = make(10);
    v.offer(5n, 10);
    assert.deepEqual(confirmed, [5n]);
    assert.equal(v.wanted(), null);
  });

  it('an LSN of a commit Kafka answered waits for a read that shows that commit', () => {
    const { v, confirmed } = make(10);
    v.offer(100n, 20);
    assert.deepEqual(confirmed, []);
    assert.equal(v.wanted(), 20);
    assert.equal(v.readBack(20, 20), 'ok');
    assert.deepEqual(confirmed, [100n]);
    assert.equal(v.wanted(), null);
  });

  it('a keepalive after the batch waits with it; a later commit waits for its own read', () => {
    const { v, confirmed } = make(0);
    v.offer(100n, 20);
    v.offer(120n, 20); // nothing to write after the batch: the same commit covers it
    v.offer(130n, 30);
    assert.equal(v.wanted(), 30);
    // A read begun before the second commit was answered shows the first only.
    assert.equal(v.readBack(20, 20), 'ok');
    assert.deepEqual(confirmed, [120n]);
    assert.equal(v.readBack(30, 30), 'ok');
    assert.deepEqual(confirmed, [120n, 130n]);
  });

  it('a read showing less than an answered commit is a lost commit: nothing past what it shows is confirmed', () => {
    const { v, confirmed } = make(10);
    v.offer(100n, 20);
    v.offer(200n, 30);
    assert.equal(v.readBack(20, 30), 'lost');
    assert.deepEqual(confirmed, [100n]);
    assert.equal(v.readBack(10, 30), 'lost');
    assert.deepEqual(confirmed, [100n]);
  });

  it('what waits is never confirmed at once by a later offer, so confirmations stay in LSN order', () => {
    const { v, confirmed } = make(10);
    v.offer(100n, 20);
    v.offer(110n, 10); // cannot happen in capture (needs only grow); kept in order all the same
    assert.deepEqual(confirmed, []);
    v.readBack(20, 20);
    assert.deepEqual(confirmed, [110n]);
  });
});
