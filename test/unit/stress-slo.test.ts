import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatencyRecorder, percentileTicks } from '../../src/core/stress/latency.js';
import { Ledger } from '../../src/core/stress/ledger.js';
import { describeMiss, evaluateSlos, parseSlos } from '../../src/core/stress/slo.js';

describe('stress-test SLOs', () => {
  it('parses the issue\'s example with units, and a sink scope', () => {
    const { slos, problems } = parseSlos('p99<200ms,loss=0,dup=0,lag<64MiB,http.p99.9<=2s,rate>=900', ['redis', 'http']);
    assert.deepEqual(problems, []);
    assert.deepEqual(slos.map((s) => [s.sink, s.metric, s.op, s.limit]), [
      [null, 'p99', '<', 200], [null, 'loss', '=', 0], [null, 'dup', '=', 0], [null, 'lag', '<', 64 * 2 ** 20], ['http', 'p99.9', '<=', 2000], [null, 'rate', '>=', 900],
    ]);
  });

  it('reports every bad term at once', () => {
    const { problems } = parseSlos('p98<1ms,p99<5parsecs,loss=1ms,kafka.p99<1s', ['redis']);
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.match(problems[0]!, /p98<1ms/);
    assert.match(problems[1]!, /latency unit/);
    assert.match(problems[2]!, /plain number/);
    assert.match(problems[3]!, /unknown sink 'kafka'/);
  });

  it('names each miss, per sink, and by how much; an unmeasured figure fails, an inapplicable one does not', () => {
    const { slos } = parseSlos('p99<200ms,dup=0,lag<1KiB', ['redis', 'http']);
    const results = evaluateSlos(slos, { lag: 512, sinks: { http: { p99: 412.5, dup: 2 }, redis: { p99: null } } });
    const missed = results.filter((r) => !r.ok).map(describeMiss);
    assert.deepEqual(missed, ['http p99 412.5 ms misses p99<200ms (by 212.5 ms)', 'redis p99<200ms: not measured', 'http dup 2 events misses dup=0 (by 2 events)']);
    assert.ok(results.find((r) => r.sink === 'redis' && r.metric === 'dup')?.ok, 'redis has no duplicates figure: not applicable');
  });

  it('loss is checked against verify\'s final state too, for the sinks it compared; no verdict fails; a sink verify did not compare has the event count alone', () => {
    const { slos } = parseSlos('loss=0', ['redis', 'bigquery', 'http']);
    const results = evaluateSlos(slos, {
      lag: null,
      sinks: { redis: { loss: 0 }, bigquery: { loss: 0 }, http: { loss: 0 } },
      stateDifferences: { redis: 2, bigquery: null },
    });
    assert.deepEqual(results.map((r) => [r.sink, r.from ?? 'events', r.actual, r.ok]), [
      ['redis', 'events', 0, true], ['redis', 'verify', 2, false], ['bigquery', 'events', 0, true], ['bigquery', 'verify', null, false], ['http', 'events', 0, true],
    ]);
    assert.deepEqual(results.filter((r) => !r.ok).map(describeMiss), [
      'redis verify: 2 rows in a final state different from PostgreSQL, misses loss=0 (by 2 rows)',
      'bigquery loss=0 (verify, final state): verify gave no verdict (see the sink\'s verify entry)',
    ]);
    const scoped = evaluateSlos(parseSlos('http.loss=0', ['redis', 'http']).slos, { lag: null, sinks: { redis: { loss: 0 }, http: { loss: 0 } }, stateDifferences: { redis: 5 } });
    assert.ok(scoped.every((r) => r.ok && r.sink === 'http'), 'a loss SLO scoped to another sink does not read redis\'s verify');
  });
});

describe('stress-test latency and ledger', () => {
  it('HDR percentiles of recorded values, and the tick scheme up to 100', () => {
    const rec = new LatencyRecorder('test');
    for (let ms = 1; ms <= 1000; ms++) rec.record(ms);
    const s = rec.summary();
    assert.equal(s.count, 1000);
    assert.ok(Math.abs(s.p50_ms! - 500) <= 1, String(s.p50_ms));
    assert.ok(Math.abs(s.p99_ms! - 990) <= 1, String(s.p99_ms));
    assert.ok(Math.abs(s.max_ms! - 1000) <= 1, String(s.max_ms));
    const ticks = percentileTicks(1000);
    assert.equal(ticks[0], 0);
    assert.equal(ticks.at(-1), 100);
    assert.ok(ticks.includes(50) && ticks.includes(75) && ticks.some((t) => t > 99.9));
  });

  it('maps every event a sink shows back to its ev: upserts by the ev column, deletes by their row', () => {
    const ledger = new Ledger(10, 100);
    const tx1 = [{ ev: 1, id: 100, kind: 'upsert' as const }, { ev: 2, id: 101, kind: 'upsert' as const }];
    const tx2 = [{ ev: 3, id: 100, kind: 'delete' as const }, { ev: 4, id: 101, kind: 'move' as const, newId: 102 }];
    ledger.prepare(tx1, 1000);
    ledger.commit(tx1, true);
    ledger.prepare(tx2, 2000);
    assert.equal(ledger.evOf('delete', undefined, 100), 3, 'known as soon as it is sent: a sink may show it before the COMMIT returns here');
    assert.equal(ledger.committedEvents, 2);
    ledger.commit(tx2, false);
    assert.equal(ledger.evOf('insert', 2, 101), 2);
    assert.equal(ledger.evOf('delete', undefined, 100), 3);
    assert.equal(ledger.evOf('delete', undefined, 101), undefined, 'row 101 moved, it was not deleted');
    assert.deepEqual([ledger.lastEvOf(100), ledger.lastEvOf(101), ledger.lastEvOf(102)], [-1, -1, 4]);
    assert.equal(ledger.intendedAt(3), 2000);
    assert.equal(ledger.measuredEvents, 2);
    assert.equal(ledger.maxId, 102);
  });
});

describe('stress-test latency fallback: processing_latency_seconds', () => {
  it('takes the window\'s histogram from two scrapes of several processes and interpolates its quantiles in their bucket', async () => {
    const { parseLatencyHistograms, histogramDelta, summaryFromHistogram } = await import('../../src/core/stress/prom-latency.js');
    const scrape = (n01: number, n1: number, inf: number) =>
      [`processing_latency_seconds_bucket{sink="http",le="0.1"} ${n01}`, `processing_latency_seconds_bucket{sink="http",le="1"} ${n1}`,
        `processing_latency_seconds_bucket{sink="http",le="+Inf"} ${inf}`, `processing_latency_seconds_count{sink="http"} ${inf}`, `processing_latency_seconds_sum{sink="http"} ${inf * 0.2}`].join('\n');
    const before = parseLatencyHistograms([scrape(10, 10, 10)]);
    // two processes; in the window: 50 events under 100 ms, 50 between 100 ms and 1 s
    const after = parseLatencyHistograms([scrape(40, 60, 60), scrape(20, 50, 50)]);
    const s = summaryFromHistogram(histogramDelta(after.get('http'), before.get('http')), 'test');
    assert.equal(s.count, 100);
    assert.equal(s.p50_ms, 100);
    assert.equal(s.p90_ms, 100 + 900 * 0.8);
    assert.equal(s.max_ms, 1000);
    assert.match(s.method, /fallback: processing_latency_seconds/);
  });
});
