import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfirmGate } from '../../src/core/capture/confirm-gate.js';

const gate = () => {
  const confirmed: bigint[] = [];
  return { confirmed, gate: new ConfirmGate((lsn) => confirmed.push(lsn)) };
};

describe('capture confirm gate', () => {
  it('confirms an LSN that needs no Kafka write at once when nothing is in flight', () => {
    const { gate: g, confirmed } = gate();
    g.confirmWhenCommitted(10n);
    assert.deepEqual(confirmed, [10n]);
  });

  it('confirms nothing while a commit is in flight, then the batch, then what was held (in LSN order)', () => {
    const { gate: g, confirmed } = gate();
    g.begin();
    g.confirmWhenCommitted(30n); // an empty transaction read while the batch ending at 20 commits
    g.confirmWhenCommitted(25n);
    assert.deepEqual(confirmed, []);
    g.committed(20n);
    assert.deepEqual(confirmed, [20n, 30n]);
    g.confirmWhenCommitted(40n);
    assert.deepEqual(confirmed, [20n, 30n, 40n]);
  });

  it('confirms nothing after a failed commit, not even what was held', () => {
    const { gate: g, confirmed } = gate();
    g.begin();
    g.confirmWhenCommitted(30n);
    g.failed();
    assert.deepEqual(confirmed, []);
  });

  it('confirms nothing after a failed commit, not even an LSN that needed no write', () => {
    // The loop learns of the failure at its next turn; a keepalive read in this one must not move the slot.
    const { gate: g, confirmed } = gate();
    g.begin();
    g.failed();
    g.confirmWhenCommitted(50n);
    g.committed(60n);
    assert.deepEqual(confirmed, []);
  });

  it('a commit that covers only part of a transaction confirms only what was held', () => {
    const { gate: g, confirmed } = gate();
    g.begin();
    g.committed(null);
    assert.deepEqual(confirmed, []);
  });

  it('allows one transaction in flight', () => {
    const { gate: g } = gate();
    g.begin();
    assert.throws(() => g.begin(), /already in flight/);
  });
});
