import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withTimeout } from '../../src/core/timeout.js';

describe('withTimeout', () => {
  it('gives the work its own result or failure when it settles in time, and never calls onTimeout', async () => {
    let calls = 0;
    assert.equal(await withTimeout(Promise.resolve(7), 1000, 'work', () => calls++), 7);
    const own = new Error('refused');
    await assert.rejects(withTimeout(Promise.reject(own), 1000, 'work', () => calls++), (err) => err === own);
    assert.equal(calls, 0);
  });

  it('at the deadline: reads what the work was doing then, calls onTimeout once, rejects saying so', async () => {
    const progress = { step: 'starting' };
    let calls = 0;
    const never = new Promise<never>(() => {});
    const waited = withTimeout(never, 50, () => `the record (at: ${progress.step})`, () => calls++);
    progress.step = 'committing';
    await assert.rejects(waited, /^Error: the record \(at: committing\) timed out after 50 ms$/);
    assert.equal(calls, 1);
  });
});
