import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VerifiedConfirms } from '../../src/core/capture/verified-confirms.js';

const make = (startEventsTotal: number) => {
  const confirmed: bigint[] = [];
  return { confirmed, v: new VerifiedConfirms(startEventsTotal, (lsn) => confirmed.push(lsn)) };
};

describe('capture confirms only what Kafka shows', () => {
  it('an LSN that needed no write, with nothing unshown before it, is confirmed at once', () => {
    const { v, confirmed } = make(10);
    v.unwritten(5n);
    assert.deepEqual(confirmed, [5n]);
    assert.equal(v.waits(), false);
  });

  it('a batch Kafka answered waits for a read that shows its checkpoint', () => {
    const { v, confirmed } = make(10);
    v.handedOver(20);
    v.committed(100n, 20);
    assert.equal(v.answered(), 20);
    assert.deepEqual(confirmed, []);
    assert.equal(v.waits(), true);
    v.readBack(10);
    assert.deepEqual(confirmed, [], 'a read of the older checkpoint confirms nothing');
    v.readBack(20);
    assert.deepEqual(confirmed, [100n]);
    assert.equal(v.waits(), false);
  });

  it('an LSN read while a batch commits waits for that batch, then goes with it, in LSN order', () => {
    const { v, confirmed } = make(10);
    v.handedOver(20); // the batch ending at 100
    v.unwritten(130n); // a keepalive read while it commits
    v.readBack(10);
    assert.deepEqual(confirmed, [], 'not before the batch in flight');
    v.committed(100n, 20);
    v.handedOver(30);
    v.committed(140n, 30);
    v.readBack(20);
    assert.deepEqual(confirmed, [130n]);
    v.readBack(30);
    assert.deepEqual(confirmed, [130n, 140n]);
  });

  it('after a failed commit nothing is confirmed: what waits needs a checkpoint Kafka never shows', () => {
    const { v, confirmed } = make(10);
    v.handedOver(20);
    v.unwritten(130n); // read while the batch commits; then its commit fails
    v.unwritten(150n); // a keepalive of the same turn, before the loop sees the failure
    v.readBack(10);
    assert.deepEqual(confirmed, []);
    assert.equal(v.answered(), 10, 'the failed commit was never answered');
  });

  it('a partial batch (no whole PostgreSQL transaction) is answered without an LSN of its own', () => {
    const { v, confirmed } = make(0);
    v.handedOver(20);
    v.committed(null, 20);
    assert.equal(v.answered(), 20);
    assert.equal(v.waits(), false);
    assert.deepEqual(confirmed, []);
  });

  it('a read showing more than one waiting checkpoint confirms the last LSN it covers only', () => {
    const { v, confirmed } = make(0);
    for (const [lsn, total] of [[100n, 20], [200n, 30], [300n, 40]] as const) {
      v.handedOver(total);
      v.committed(lsn, total);
    }
    v.readBack(35);
    assert.deepEqual(confirmed, [200n]);
  });
});
