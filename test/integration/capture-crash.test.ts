import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runCaptureCrash } from '../crash/capture-crash.js';

// The short form of `npm run crash:capture`: fewer kills and changes, smaller batches so
// the big transaction is still split across several Kafka transactions.
it('capture survives SIGKILL at random instants: every change in Kafka once, in order per key', async () => {
  const result = await runCaptureCrash({ kills: 5, smallEvents: 3000, bigTransactionRows: 4000, killWindowMs: [300, 2500], maxBatchEvents: 500 });
  assert.ok(result.kills >= 5);
  assert.equal(result.events, result.workload_rows);
  assert.ok(result.events >= 7000, `only ${result.events} changes`);
  assert.deepEqual({ lost: result.lost, duplicates: result.duplicates, out_of_order: result.out_of_order }, { lost: 0, duplicates: 0, out_of_order: 0 });
});

// The short form of `npm run crash:capture-kafka`: the broker (a private one) stopped under a
// running capturer, with SIGKILL then SIGTERM, and started again.
it('capture survives its Kafka broker killed and restarted: every change in Kafka once, in order per key', async () => {
  const result = await runCaptureCrash({ kills: 0, brokerRestarts: 2, smallEvents: 3000, bigTransactionRows: 3000, killWindowMs: [300, 2500], maxBatchEvents: 500 });
  assert.equal(result.kills, 2);
  assert.equal(result.events, result.workload_rows);
  assert.ok(result.events >= 6000, `only ${result.events} changes`);
  assert.deepEqual({ lost: result.lost, duplicates: result.duplicates, out_of_order: result.out_of_order }, { lost: 0, duplicates: 0, out_of_order: 0 });
});
