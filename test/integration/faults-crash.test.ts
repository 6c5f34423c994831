import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runFaultsCrash } from '../crash/faults-crash.js';

/** The short form of `npm run crash:faults`: one Redis flush and one Kafka restart under a steady writer. */
describe('faults crash proof (short form)', { timeout: 600_000 }, () => {
  it('a Redis flush and a Kafka restart: nothing lost or duplicated, Redis and BigQuery latest equal PostgreSQL', async () => {
    const result = await runFaultsCrash({ faults: ['redis-flush', 'kafka-restart'], changes: 2000, kafkaDownMs: 10_000, ratePerSecond: 100, log: (line) => process.stderr.write(`faults-crash: ${line}\n`) });
    assert.deepEqual(result.problems, []);
    for (const [sink, t] of Object.entries(result.sinks)) assert.deepEqual(t, { lost: 0, duplicates: 0 }, sink);
    assert.equal(result.redis_matches_postgres, true);
    assert.equal(result.bigquery_latest_matches_postgres, true);
    assert.ok(result.events >= 2000, `events: ${result.events}`);
  });
});
