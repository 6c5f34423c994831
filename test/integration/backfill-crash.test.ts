import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runBackfillCrash } from '../crash/backfill-crash.js';

/** The short form of `npm run crash:backfill`: fewer rows and kills, same checks. */
describe('backfill crash proof (short)', { timeout: 600_000 }, () => {
  it('SIGKILLed and resumed while stream runs and rows change: Redis and BigQuery equal PostgreSQL, no id twice in Kafka', async () => {
    const result = await runBackfillCrash({ rows: 20_000, kills: 3, chunkSize: 1000, killWindowMs: [0, 1500], workloadTps: 100 });
    assert.equal(result.kills, 3);
    assert.ok(result.rows >= 19_000, `rows: ${result.rows}`);
    assert.ok(result.workload_changes > 100, `rows changed during the backfill: ${result.workload_changes}`);
    assert.equal(result.duplicates, 0);
    assert.deepEqual(result.mismatches, { redis: [], bigquery: [] });
    assert.equal(result.sinks_match_postgres, true);
  });
});
