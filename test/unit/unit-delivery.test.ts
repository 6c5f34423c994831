import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitState } from 'cockatiel';
import type { ConsumedRecord } from '../../src/core/clients/batch-consumer.js';
import type { DeadLetter } from '../../src/core/delivery/dlq.js';
import { breakerFor, RetryableWriteError, retryPolicyFor } from '../../src/core/delivery/policies.js';
import type { Prepared } from '../../src/core/delivery/prepare.js';
import { countersFor, STAGE_SAMPLE_EVERY, UnitDelivery, type DeliveryClock, type DeliveryCounters, type UnitDeliveryOptions } from '../../src/core/delivery/unit-delivery.js';
import type { ChangeEvent } from '../../src/core/event/envelope.js';
import { TARGET_SINKS_HEADER } from '../../src/core/event/targets.js';
import type { LogFields, Logger } from '../../src/core/logger.js';
import { PipelineMetrics } from '../../src/core/metrics.js';
import { SINK_STATE_LOST, type OffsetsToStore, type SinkRecord, type WriteResult } from '../../src/core/sinks/contract.js';

// The unit delivery on plain objects: a scripted sink, a collecting DLQ, a clock that
// records the waits it is asked for instead of waiting, and cockatiel's real policies.

const T0 = Date.parse('2026-01-01T00:00:00Z');
const ok: WriteResult = { ok: true };
const retryable = (errorClass = 'http_503', retryAfterMs?: number): WriteResult => ({ ok: false, permanent: false, errorClass, message: 'try later', ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
const permanent: WriteResult = { ok: false, permanent: true, errorClass: 'http_422', message: 'unprocessable' };

/** Record `n` of partition 0: an event, or text that does not parse when `invalid`. */
function record(n: number, options: { invalid?: boolean; headers?: ConsumedRecord['headers'] } = {}): ConsumedRecord {
  const event = { id: `e${n}`, op: n % 2 === 0 ? 'insert' : 'update', commit_ts: new Date(T0 - 2000).toISOString() };
  return { key: Buffer.from(`k${n}`), value: Buffer.from(options.invalid ? '{not json' : JSON.stringify(event)), offset: String(n), timestamp: '0', headers: options.headers ?? {} };
}

const prepareJson = (m: ConsumedRecord): Prepared => {
  try {
    return { ok: true, event: JSON.parse(m.value!.toString()) as ChangeEvent };
  } catch (err) {
    return { ok: false, eventId: '', errorClass: 'invalid_json', message: (err as Error).message };
  }
};

interface Harness {
  delivery: UnitDelivery;
  /** The event ids of each write call, in order. */
  writes: string[][];
  offsetsSeen: Array<OffsetsToStore | undefined>;
  letters: DeadLetter[];
  /** 'dlq' and 'write' in the order they happened. */
  order: string[];
  sleeps: number[];
  /** For each delivered record in order: whether its per-stage latency was observed. */
  staged: boolean[];
  warnings: string[];
  infos: string[];
  counts: { attempted: number; delivered: Record<string, number>; latencies: number[]; failed: Record<string, number>; deadLettered: Record<string, number> };
  options: UnitDeliveryOptions;
}

/**
 * `answer(call, records)` scripts the sink: the results of its `call`-th write (from 0). A
 * throw (assert.fail) is a failed write, as a sink's exception would be: the tests that use
 * it also count the writes. `onSleep` runs when the delivery asks the clock to wait.
 */
function harness(
  answer: (call: number, records: SinkRecord[]) => WriteResult[] | Promise<WriteResult[]>,
  policy: { retries?: number; consecutiveFailures?: number; halfOpenAfterMs?: number; onSleep?: (ms: number) => void | Promise<void> } = {},
): Harness {
  const h: Omit<Harness, 'delivery' | 'options'> = {
    writes: [],
    offsetsSeen: [],
    letters: [],
    order: [],
    sleeps: [],
    staged: [],
    warnings: [],
    infos: [],
    counts: { attempted: 0, delivered: {}, latencies: [], failed: {}, deadLettered: {} },
  };
  let now = T0;
  const clock: DeliveryClock = {
    now: () => now,
    sleep: async (ms) => {
      h.sleeps.push(ms);
      await policy.onSleep?.(ms);
      now += ms;
    },
  };
  const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
  const counters: DeliveryCounters = {
    attempted: (n) => (h.counts.attempted += n),
    delivered: (op, latency, stages) => {
      bump(h.counts.delivered, op);
      h.staged.push(stages !== undefined);
      if (latency !== undefined) h.counts.latencies.push(latency);
    },
    failed: (c) => bump(h.counts.failed, c),
    deadLettered: (c) => bump(h.counts.deadLettered, c),
  };
  const logger: Logger = {
    debug: () => {},
    info: (m: string) => h.infos.push(m),
    warn: (m: string, _f?: LogFields) => h.warnings.push(m),
    error: () => {},
    child: () => logger,
  };
  const options: UnitDeliveryOptions = {
    sink: {
      name: 'http',
      write: async (records, offsets) => {
        h.order.push('write');
        h.offsetsSeen.push(offsets);
        const call = h.writes.push(records.map((r) => r.event.id)) - 1;
        return answer(call, records);
      },
    },
    prepare: prepareJson,
    // Backoff of 1 ms: cockatiel's own timer, too short to matter; the waits under test go through the clock.
    retry: retryPolicyFor({ retries: policy.retries ?? 3, initialDelayMs: 1, maxDelayMs: 1 }),
    breaker: breakerFor({ consecutiveFailures: policy.consecutiveFailures ?? 5, halfOpenAfterMs: policy.halfOpenAfterMs ?? 60_000 }),
    dlq: {
      write: async (letters) => {
        if (letters.length > 0) h.order.push('dlq');
        h.letters.push(...letters);
      },
    },
    counters,
    logger,
    clock,
  };
  return { ...h, options, delivery: new UnitDelivery(options) };
}

const unit = (records: ConsumedRecord[], offsets?: OffsetsToStore) => ({ topic: 'changes', partition: 0, records, ...(offsets ? { offsets } : {}) });
const never = new AbortController().signal;

describe('unit delivery (no Kafka)', () => {
  it('retries, sending again only the records that failed, until they land', async () => {
    const h = harness((call, records) => (call === 0 ? [ok, retryable(), ok] : records.map(() => ok)));
    const offsets = { group: 'g', next: { 'changes:0': '3' } };
    assert.equal(await h.delivery.deliver(unit([record(0), record(1), record(2)], offsets), never), 'delivered');
    assert.deepEqual(h.writes, [['e0', 'e1', 'e2'], ['e1']]);
    assert.deepEqual(h.offsetsSeen, [offsets, offsets], 'the offsets go with every write of the unit');
    assert.deepEqual(h.letters, []);
    assert.deepEqual(h.sleeps, [], 'no Retry-After: only cockatiel backoff');
  });

  it('waits at least the Retry-After the sink was told (the largest of the unit) before the next attempt', async () => {
    const h = harness((call) => (call === 0 ? [retryable('http_429', 5000), retryable('http_429', 7000), ok] : [ok, ok]));
    assert.equal(await h.delivery.deliver(unit([record(0), record(1), record(2)]), never), 'delivered');
    assert.deepEqual(h.sleeps, [7000]);
    assert.deepEqual(h.writes, [['e0', 'e1', 'e2'], ['e0', 'e1']]);
  });

  it('sends a permanent failure to the DLQ at once, with its class, source and attempts, and delivers the rest', async () => {
    const h = harness((call) => (call === 0 ? [ok, permanent] : assert.fail('nothing is retried')));
    assert.equal(await h.delivery.deliver(unit([record(4), record(5)]), never), 'delivered');
    assert.equal(h.writes.length, 1);
    assert.equal(h.letters.length, 1);
    const l = h.letters[0]!;
    assert.deepEqual(
      { sink: l.sink, eventId: l.eventId, key: l.key, errorClass: l.errorClass, message: l.message, attempts: l.attempts, source: l.source },
      { sink: 'http', eventId: 'e5', key: 'k5', errorClass: 'http_422', message: 'unprocessable', attempts: 1, source: { topic: 'changes', partition: 0, offset: '5' } },
    );
    assert.equal(l.value, record(5).value!.toString(), 'the letter holds the record as read, not the prepared event');
  });

  it('sends what is still failing to the DLQ when the retries run out, with every attempt counted', async () => {
    const h = harness((_call, records) => records.map((r) => (r.event.id === 'e1' ? retryable('http_503') : ok)), { retries: 2 });
    assert.equal(await h.delivery.deliver(unit([record(0), record(1)]), never), 'delivered');
    assert.deepEqual(h.writes, [['e0', 'e1'], ['e1'], ['e1']]);
    assert.deepEqual(
      h.letters.map((l) => [l.eventId, l.errorClass, l.attempts]),
      [['e1', 'http_503', 3]],
    );
    assert.ok(h.letters[0]!.firstFailureAt <= h.letters[0]!.lastFailureAt);
    assert.deepEqual(h.warnings, ['retries exhausted: sending to the DLQ']);
  });

  it('sends invalid events to the DLQ before anything is written, and never to the sink', async () => {
    const h = harness((_c, records) => records.map(() => ok));
    assert.equal(await h.delivery.deliver(unit([record(0), record(1, { invalid: true }), record(2)]), never), 'delivered');
    assert.deepEqual(h.order, ['dlq', 'write']);
    assert.deepEqual(h.writes, [['e0', 'e2']]);
    assert.deepEqual(
      h.letters.map((l) => [l.source.offset, l.errorClass, l.attempts]),
      [['1', 'invalid_json', 1]],
    );
  });

  it('passes records meant for other sinks only, like delivered ones', async () => {
    const h = harness((_c, records) => records.map(() => ok));
    assert.equal(await h.delivery.deliver(unit([record(0, { headers: { [TARGET_SINKS_HEADER]: 'redis' } }), record(1, { headers: { [TARGET_SINKS_HEADER]: 'http,redis' } })]), never), 'delivered');
    assert.deepEqual(h.writes, [['e1']]);
  });

  it('holds, never dead-letters, events of a sink that is unreachable; says so once per outage', async () => {
    const h = harness((_c, records) => records.map(() => retryable('http_unreachable')), { retries: 1, consecutiveFailures: 1, halfOpenAfterMs: 1 });
    assert.equal(await h.delivery.deliver(unit([record(0)]), never), 'held');
    assert.equal(h.options.breaker.state, CircuitState.Open);
    await new Promise((r) => setTimeout(r, 5)); // past halfOpenAfter: the next unit is the probe
    assert.equal(await h.delivery.deliver(unit([record(1)]), never), 'held');
    assert.deepEqual(h.letters, []);
    assert.deepEqual(h.warnings, ['http unreachable: holding its events until it answers (nothing dead-lettered)']);
    // Once it answers (the probe closes the circuit), that is said too.
    await new Promise((r) => setTimeout(r, 5));
    h.options.sink.write = async (records) => records.map(() => ok);
    assert.equal(await h.delivery.deliver(unit([record(2)]), never), 'delivered');
    assert.deepEqual(h.infos, ['http reachable again: delivering what waited']);
  });

  it('does not write while the circuit is open: the unit is held, nothing dead-lettered', async () => {
    const h = harness((_c, records) => records.map(() => retryable('http_503')), { retries: 1, consecutiveFailures: 1 });
    assert.equal(await h.delivery.deliver(unit([record(0)]), never), 'delivered', 'out of retries: to the DLQ, and the circuit opens');
    assert.equal(h.options.breaker.state, CircuitState.Open);
    const writes = h.writes.length;
    assert.equal(await h.delivery.deliver(unit([record(1)]), never), 'held');
    assert.equal(h.writes.length, writes, 'no write under an open circuit');
    assert.deepEqual(
      h.letters.map((l) => l.eventId),
      ['e0'],
    );
  });

  it('stops retrying a unit when another unit opened the circuit meanwhile', async () => {
    let breaker: UnitDeliveryOptions['breaker'] | undefined;
    const h = harness((call) => (call === 0 ? [retryable('http_429', 1000)] : assert.fail('no retry into an open circuit')), {
      consecutiveFailures: 1,
      // While this unit waits out its Retry-After, another one fails for good and opens the circuit.
      onSleep: async () => {
        await breaker!.execute(() => Promise.reject(new RetryableWriteError('another unit failed', undefined))).catch(() => {});
      },
    });
    breaker = h.options.breaker;
    assert.equal(await h.delivery.deliver(unit([record(0)]), never), 'held');
    assert.equal(breaker.state, CircuitState.Open);
    assert.deepEqual(h.writes.length, 1);
    assert.deepEqual(h.letters, []);
  });

  it('gives up a cancelled unit without a verdict: no further write, nothing dead-lettered', async () => {
    const abort = new AbortController();
    const h = harness((call) => (call === 0 ? [retryable('http_429', 30_000)] : assert.fail('no write after the cancel')), { onSleep: () => abort.abort() });
    assert.equal(await h.delivery.deliver(unit([record(0)]), abort.signal), 'held');
    assert.equal(h.writes.length, 1);
    assert.deepEqual(h.letters, []);
    const before = new AbortController();
    before.abort();
    const none = harness(() => assert.fail('a unit cancelled before it starts writes nothing'));
    assert.equal(await none.delivery.deliver(unit([record(0)]), before.signal), 'held');
  });

  it('reports a sink that lost its state: neither retried nor dead-lettered', async () => {
    const h = harness((call) => (call === 0 ? [{ ok: false, permanent: false, errorClass: SINK_STATE_LOST, message: 'marker gone' }] : assert.fail('no retry')));
    assert.equal(await h.delivery.deliver(unit([record(0)]), never), 'state-lost');
    assert.deepEqual(h.letters, []);
  });

  it('counts attempts per record, deliveries per op with their latency, failures and dead letters per class', async () => {
    const h = harness((call, records) => (call === 0 ? [ok, retryable('http_503'), permanent] : records.map(() => ok)));
    await h.delivery.deliver(unit([record(0), record(1), record(2), record(3, { invalid: true })]), never);
    assert.deepEqual(h.counts, {
      attempted: 4, // three records, then the one retried
      delivered: { insert: 1, update: 1 },
      latencies: [2, 2], // committed 2 s before the (fixed) clock
      failed: { http_503: 1, http_422: 1 },
      deadLettered: { invalid_json: 1, http_422: 1 },
    });
  });

  it('observes the per-stage latency of one delivered event in STAGE_SAMPLE_EVERY, across units', async () => {
    const h = harness((_call, records) => records.map(() => ok));
    const n = STAGE_SAMPLE_EVERY * 3;
    for (let i = 0; i < n; i += 4) await h.delivery.deliver(unit([record(i), record(i + 1), record(i + 2), record(i + 3)]), never);
    assert.equal(h.staged.length, n);
    assert.deepEqual(
      h.staged.flatMap((s, i) => (s ? [i + 1] : [])),
      [STAGE_SAMPLE_EVERY, STAGE_SAMPLE_EVERY * 2, STAGE_SAMPLE_EVERY * 3],
    );
    assert.equal(h.counts.latencies.length, n, 'processing latency stays per event');
  });

  it('countersFor writes those counts to the pipeline metrics, labelled with the sink', async () => {
    const metrics = new PipelineMetrics();
    const c = countersFor(metrics, 'http');
    c.attempted(3);
    c.delivered('insert', 0.05);
    c.delivered('insert', undefined);
    c.failed('http_503');
    c.deadLettered('http_422');
    const value = async (m: { get(): Promise<{ values: Array<{ value: number; labels: object; metricName?: string }> }> }, labels: object, metricName?: string) =>
      (await m.get()).values.find((v) => JSON.stringify(v.labels) === JSON.stringify(labels) && (metricName === undefined || v.metricName === metricName))?.value;
    assert.equal(await value(metrics.sinkAttempts, { sink: 'http' }), 3);
    assert.equal(await value(metrics.eventsProcessed, { sink: 'http', op: 'insert' }), 2);
    assert.equal(await value(metrics.processingLatency, { sink: 'http' }, 'processing_latency_seconds_count'), 1);
    assert.equal(await value(metrics.sinkErrors, { sink: 'http', class: 'http_503' }), 1);
    assert.equal(await value(metrics.dlqEvents, { sink: 'http', class: 'http_422' }), 1);
  });
});
