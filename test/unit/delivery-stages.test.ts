import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deliveryStages } from '../../src/core/delivery/stages.js';
import { PipelineMetrics } from '../../src/core/metrics.js';
import { countersFor } from '../../src/core/delivery/unit-delivery.js';
import { stageReport } from '../../src/core/stress/stages.js';
import { stageLatencyLine } from '../../bench/e2e-stages.js';

// Where delivery time goes (delivery/stages.ts), and the stress report's figures of it
// (stress/stages.ts) from two scrapes of real prom-client registries.

const T = Date.parse('2026-12-01T19:00:00.000Z');

describe('delivery stages', () => {
  it('splits commit -> acknowledgement into capture, kafka and write, in seconds', () => {
    const s = deliveryStages({ commitTs: new Date(T).toISOString(), recordTimestampMs: T + 30, receivedAtMs: T + 110, writtenAtMs: T + 125 });
    assert.deepEqual(s, { capture: 0.03, kafka: 0.08, write: 0.015 });
  });

  it('leaves out a stage whose clock is missing, and counts a negative span (clock skew) as 0', () => {
    assert.deepEqual(deliveryStages({ commitTs: new Date(T).toISOString(), recordTimestampMs: -1, receivedAtMs: T + 50, writtenAtMs: T + 60 }), { write: 0.01 });
    assert.deepEqual(deliveryStages({ commitTs: 'not a time', recordTimestampMs: T, receivedAtMs: undefined, writtenAtMs: T + 5 }), {});
    assert.deepEqual(deliveryStages({ commitTs: new Date(T + 5).toISOString(), recordTimestampMs: T, receivedAtMs: T + 2, writtenAtMs: T + 4 }), { capture: 0, kafka: 0.002, write: 0.002 });
  });
});

describe('stage report', () => {
  /** A pipeline process's /metrics after delivering `n` events with these stage spans (ms) to `sink`. */
  async function scrape(metrics: PipelineMetrics, sink: string, n: number, ms: { capture: number; kafka: number; write: number }): Promise<string> {
    const counters = countersFor(metrics, sink);
    for (let i = 0; i < n; i++) counters.delivered('insert', (ms.capture + ms.kafka + ms.write) / 1000, { capture: ms.capture / 1000, kafka: ms.kafka / 1000, write: ms.write / 1000 });
    return metrics.registry.metrics();
  }

  it('takes each stage over the window only (after - before), per sink, summed over processes', async () => {
    const one = new PipelineMetrics();
    const two = new PipelineMetrics();
    // Before the window: slow events that must not count.
    const before = [await scrape(one, 'redis', 100, { capture: 900, kafka: 900, write: 900 }), await scrape(two, 'http', 10, { capture: 900, kafka: 900, write: 900 })];
    for (let i = 0; i < 20; i++) one.captureCommitSeconds.observe(5);
    const before2 = [await one.registry.metrics(), before[1]!];
    // In the window: redis 200 events at 20/60/4 ms in process one; http 50 at 3/3/300 ms in process two.
    const after = [await scrape(one, 'redis', 200, { capture: 20, kafka: 60, write: 4 }), await scrape(two, 'http', 50, { capture: 3, kafka: 3, write: 300 })];
    for (let i = 0; i < 40; i++) one.captureCommitSeconds.observe(0.045);
    after[0] = await one.registry.metrics();
    const r = stageReport(before2, after, ['redis', 'http', 'bigquery'], { count: 7, p50_ms: 1, p99_ms: 2 });

    assert.deepEqual(Object.keys(r.sinks).sort(), ['http', 'redis'], 'a sink with no event in the window has no stages');
    const redis = r.sinks['redis']!;
    assert.equal(redis.capture.count, 200);
    // Within the bucket each value falls in (15-20, 50-75, 2.5-5 ms).
    for (const [stage, lo, hi] of [['capture', 15, 20], ['kafka', 50, 75], ['write', 2.5, 5]] as const) {
      for (const p of [redis[stage].p50_ms!, redis[stage].p99_ms!]) assert.ok(p > lo && p <= hi, `redis ${stage}: ${p} not in (${lo}, ${hi}]`);
    }
    const http = r.sinks['http']!;
    assert.equal(http.write.count, 50);
    assert.ok(http.write.p99_ms! > 250 && http.write.p99_ms! <= 300, `http write p99 ${http.write.p99_ms}`);
    assert.equal(r.capture_transaction?.count, 40);
    assert.ok(r.capture_transaction!.p99_ms! > 40 && r.capture_transaction!.p99_ms! <= 50);
    assert.deepEqual(r.load_commit, { count: 7, p50_ms: 1, p99_ms: 2 });

    const line = stageLatencyLine({ stages: r });
    assert.match(line, /intended->PostgreSQL commit 1\/2; /);
    assert.match(line, /redis: commit->Kafka [\d.]+\/[\d.]+, Kafka->received [\d.]+\/[\d.]+, received->written [\d.]+\/[\d.]+/);
    assert.equal(stageLatencyLine({ stages: null }), 'latency per stage: not measured');
  });
});
