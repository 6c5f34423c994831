import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { duration, inPlaceFrame } from '../../src/commands/status.js';
import { circuitsFromMetrics, samplesBySink } from '../../src/core/health/circuits.js';

const METRICS = `# HELP circuit_state Circuit breaker of a sink
# TYPE circuit_state gauge
circuit_state{sink="redis"} 0
circuit_state{sink="http"} 1
circuit_state{sink="bigquery"} 2
# TYPE circuit_opened_timestamp_seconds gauge
circuit_opened_timestamp_seconds{sink="redis"} 0
circuit_opened_timestamp_seconds{sink="http"} 1000.25
circuit_opened_timestamp_seconds{sink="bigquery"} 1500
circuit_state_other{sink="x"} 1
`;

describe("status: circuits from the stream's /metrics", () => {
  it("reads each sink's state and how long it has been open", () => {
    assert.deepEqual(circuitsFromMetrics(METRICS, 1_600_000), [
      { sink: 'redis', state: 'closed', open_seconds: null },
      { sink: 'http', state: 'open', open_seconds: 600 },
      { sink: 'bigquery', state: 'half-open', open_seconds: 100 },
    ]);
  });

  it('takes only the metric asked for, by its exact name', () => {
    assert.deepEqual([...samplesBySink(METRICS, 'circuit_state').keys()], ['redis', 'http', 'bigquery']);
  });

  it('says how long in words an operator reads at a glance', () => {
    assert.equal(duration(12), '12s');
    assert.equal(duration(187), '3m 07s');
    assert.equal(duration(7500), '2h 05m');
  });

  it('draws a --watch frame over the previous one: home, each line cleared to its end, the rest below cleared', () => {
    assert.equal(inPlaceFrame('a\nbb'), '\x1b[Ha\x1b[K\nbb\x1b[K\n\x1b[J');
  });
});
