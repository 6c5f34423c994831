import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runDeliveryCrash } from '../crash/delivery-crash.js';

// The short form of `npm run crash:delivery`: fewer events and kills, the same faults.
it('delivery survives SIGKILL and a failing upstream: every event in each sink once or in its DLQ; Redis and BigQuery latest equal PostgreSQL (with key changes and a FULL table)', { timeout: 600_000 }, async () => {
  const r = await runDeliveryCrash({
    kills: 3,
    smallEvents: 1200,
    bigTransactionRows: 300,
    killWindowMs: [2000, 5000],
    faults: { '5xx': 0.05, '429': 0.03, hang: 0.005, '4xx': 0.01 },
  });
  assert.ok(r.kills >= 3);
  assert.ok(r.events >= 1500, `only ${r.events} events`);
  assert.deepEqual(r.redis_mismatches, []);
  assert.equal(r.redis_matches_postgres, true);
  assert.deepEqual(r.bigquery_latest_mismatches, []);
  assert.equal(r.bigquery_latest_matches_postgres, true);
  for (const [sink, tally] of Object.entries(r.sinks)) {
    assert.deepEqual({ sink, lost: tally.lost, duplicates: tally.duplicates }, { sink, lost: 0, duplicates: 0 });
  }
});
