import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { noFaults, parseFaultPlan, pickFault } from '../../src/receiver/faults.js';

describe('receiver fault plan', () => {
  it('plays a script first, then draws from the rates', () => {
    const plan = parseFaultPlan({ next: ['429', 'hang'], rates: { '5xx': 0.25, '4xx': 0.25 } });
    assert.ok(typeof plan !== 'string');
    assert.equal(pickFault(plan, 0.99), '429');
    assert.equal(pickFault(plan, 0.99), 'hang');
    assert.equal(pickFault(plan, 0.1), '5xx');
    assert.equal(pickFault(plan, 0.3), '4xx');
    assert.equal(pickFault(plan, 0.6), null);
  });
  it('answers normally with no plan', () => {
    assert.equal(pickFault(noFaults(), 0), null);
  });
  it('explains what is wrong with a bad plan', () => {
    assert.equal(parseFaultPlan({ rates: { '5xx': 0.8, '429': 0.8 } }), 'rates must add up to at most 1');
    assert.equal(parseFaultPlan({ rates: { teapot: 0.1 } }), "unknown fault 'teapot' (known: 5xx, 429, 4xx, hang)");
    assert.equal(parseFaultPlan({ next: ['oops'] }), 'next must be a list of 5xx, 429, 4xx, hang');
    assert.equal(parseFaultPlan(null), 'body must be a JSON object');
  });
});
