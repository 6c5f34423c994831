import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitState } from 'cockatiel';
import { breakerFor, RetryableWriteError, UnitCancelledError } from '../../src/core/delivery/policies.js';

const fail = () => Promise.reject(new RetryableWriteError('down', undefined));
const cancelled = () => Promise.reject(new UnitCancelledError());

async function openThenHalfOpen() {
  const breaker = breakerFor({ consecutiveFailures: 1, halfOpenAfterMs: 20 });
  await assert.rejects(breaker.execute(fail), RetryableWriteError);
  assert.equal(breaker.state, CircuitState.Open);
  await new Promise((r) => setTimeout(r, 40));
  return breaker;
}

describe('circuit breaker: a cancelled half-open probe', () => {
  it('does not close the circuit (it opens again for another probe)', async () => {
    const breaker = await openThenHalfOpen();
    await assert.rejects(breaker.execute(cancelled), UnitCancelledError);
    assert.notEqual(breaker.state, CircuitState.Closed, 'a probe cancelled by a rebalance proved nothing');
    await new Promise((r) => setTimeout(r, 40));
    await breaker.execute(() => Promise.resolve('ok'));
    assert.equal(breaker.state, CircuitState.Closed, 'a probe that succeeds closes it');
  });

  it('is neutral while the circuit is closed: cancellations never open it', async () => {
    const breaker = breakerFor({ consecutiveFailures: 1, halfOpenAfterMs: 20 });
    for (let i = 0; i < 3; i++) await assert.rejects(breaker.execute(cancelled), UnitCancelledError);
    assert.equal(breaker.state, CircuitState.Closed);
  });
});
