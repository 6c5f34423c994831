import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { breakerFor, retryPolicyFor } from '../../src/core/delivery/policies.js';
import { SinkRunner } from '../../src/core/delivery/runner.js';
import { ProgressWatch } from '../../src/core/health/progress.js';
import { silentLogger } from '../../src/core/logger.js';
import { PipelineMetrics } from '../../src/core/metrics.js';
import type { Sink } from '../../src/core/sinks/contract.js';

/**
 * A sink whose consumer stopped reading (a group it never joined again after a broker
 * restart, a read that never returns) runs no batch, so it never says it has work: only its
 * consumer group's lag shows it. /ready and `status` must call it stuck, and say where it is.
 */
describe('a sink that stops reading while its lag grows', () => {
  const runner = (metrics: PipelineMetrics) =>
    new SinkRunner({
      kafka: {} as never,
      sink: { name: 'http', storesOffsets: false, start: async () => {}, stop: async () => {}, write: async () => [], healthCheck: async () => {} } as unknown as Sink,
      dlq: { write: async () => {} },
      enrich: {} as never,
      rowProblems: () => [],
      retry: retryPolicyFor({ retries: 1, initialDelayMs: 1, maxDelayMs: 1 }),
      breaker: breakerFor({ consecutiveFailures: 5, halfOpenAfterMs: 1000 }),
      metrics,
      logger: silentLogger,
      topic: 't',
      group: 'g',
      maxBatchEvents: 10,
      partitionsConsumedConcurrently: 1,
      halfOpenAfterMs: 1000,
      sessionTimeoutMs: 6000,
      onCrash: () => {},
    });

  it('without a consumer (it could not start): stuck once it had lag and no progress for the threshold, and the reason says so', async () => {
    const metrics = new PipelineMetrics();
    const r = runner(metrics);
    r.lagged(0);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(metrics.progress.stuck(10), [], 'no lag: nothing waits, never stuck');
    r.lagged(42);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const stuck = metrics.progress.stuck(10);
    assert.equal(stuck.length, 1);
    assert.equal(stuck[0]!.component, 'sink http');
    assert.match(stuck[0]!.reason, /made no progress for [\d.]+ s .*; now: no consumer$/);
  });

  it('a later lag measurement does not restart the clock (the oldest work counts)', async () => {
    const metrics = new PipelineMetrics();
    const r = runner(metrics);
    r.lagged(5);
    await new Promise((resolve) => setTimeout(resolve, 40));
    r.lagged(7);
    assert.equal(metrics.progress.stuck(30).length, 1);
  });
});

describe('ProgressWatch', () => {
  it('adds what the component is doing now to the reason, read when it is stuck', () => {
    let now = 0;
    const w = new ProgressWatch('capture', () => now);
    let step = 'reading';
    w.explainWith(() => step);
    w.work();
    now = 5000;
    step = 'committing';
    assert.match(w.stuck(1000)!.reason, /for 5 s .*; now: committing$/);
    w.progress('0/1');
    assert.equal(w.stuck(1000), null);
  });
});
