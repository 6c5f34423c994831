import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { breakerFor, retryPolicyFor } from '../../src/core/delivery/policies.js';
import { settleReporting } from '../../src/core/delivery/deliverer.js';
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
const runnerFor = (metrics: PipelineMetrics) =>
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

describe('a sink that stops reading while its lag grows', () => {
  const runner = runnerFor;

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

describe('a sink whose consumer holds one step', () => {
  it('is work (then stuck) once the step has lasted over 30 s with lag waiting; a consumer moving step by step is not', async () => {
    const withConsumer = (forMs: number) => {
      const metrics = new PipelineMetrics();
      const r = runnerFor(metrics);
      // The consumer's own view of its step (BatchConsumer.phase), as a started runner holds it.
      (r as unknown as { consumer: unknown }).consumer = { phase: () => ({ doing: 'reading from Kafka', forMs, assigned: [0, 1] }) };
      r.lagged(9);
      return metrics;
    };
    const held = withConsumer(31_000);
    const moving = withConsumer(400);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(moving.progress.stuck(10), [], 'a consumer reading round after round: its lag may be another member\'s');
    const stuck = held.progress.stuck(10);
    assert.equal(stuck.length, 1);
    assert.match(stuck[0]!.reason, /now: consumer reading from Kafka for 31 s \(partitions 0,1\)$/);
  });
});

describe('settleReporting (a stop that takes long says what it waits for)', () => {
  it('names each task still running at every interval, and stops naming it once it is done', async () => {
    const named: string[] = [];
    let finish!: () => void;
    const slow = new Promise<void>((resolve) => (finish = resolve));
    const fast = Promise.resolve();
    const done = settleReporting([['http', slow], ['redis', fast]], 20, (name) => void named.push(name));
    await new Promise((resolve) => setTimeout(resolve, 70));
    finish();
    await done;
    const after = named.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(after >= 2, `reported ${after} times`);
    assert.ok(named.every((n) => n === 'http'), named.join());
    assert.equal(named.length, after, 'no report once everything settled');
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
