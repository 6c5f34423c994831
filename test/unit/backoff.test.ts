import assert from 'node:assert/strict';
import { it } from 'node:test';
import { backoffDelays } from '../../src/core/backoff.js';
import { sleepUnlessAborted } from '../../src/core/timeout.js';

it('restart delays double from initialDelayMs and stop at maxDelayMs', () => {
  const next = backoffDelays({ initialDelayMs: 300, maxDelayMs: 30_000 });
  assert.deepEqual(Array.from({ length: 9 }, next), [300, 600, 1200, 2400, 4800, 9600, 19200, 30000, 30000]);
});

it('an aborted wait ends at once, whatever its length', async () => {
  const stop = new AbortController();
  const settled = (p: Promise<void>) => Promise.race([p.then(() => 'ended'), new Promise((resolve) => setImmediate(() => resolve('still waiting')))]);
  const waiting = sleepUnlessAborted(3_600_000, stop.signal);
  assert.equal(await settled(waiting), 'still waiting');
  stop.abort();
  assert.equal(await settled(waiting), 'ended');
  assert.equal(await settled(sleepUnlessAborted(3_600_000, stop.signal)), 'ended');
});
