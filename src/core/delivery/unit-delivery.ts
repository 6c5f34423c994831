import { BrokenCircuitError, CircuitState, type CircuitBreakerPolicy, type RetryPolicy } from 'cockatiel';
import type { ConsumedRecord } from '../clients/batch-consumer.js';
import { isForSink } from '../event/targets.js';
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics.js';
import { isUnreachable, SINK_STATE_LOST, type OffsetsToStore, type Sink, type SinkRecord, type WriteResult } from '../sinks/contract.js';
import { sleepUnlessAborted } from '../timeout.js';
import type { DeadLetter } from './dlq.js';
import { RetryableWriteError, UnitCancelledError } from './policies.js';
import type { Prepared } from './prepare.js';
import { DELIVERY_STAGES, deliveryStages, type DeliveryStage } from './stages.js';

/**
 * The delivery of one unit (a run of one partition's records, ./plan.ts) to one sink,
 * with nothing of Kafka in it, so its rules are tested on plain objects:
 *   1. prepare each record (parse, validate, enrich); what is invalid goes to the DLQ first;
 *   2. write to the sink under retry (backoff, and at least Retry-After when the sink was
 *      told one) inside the breaker; only the records that failed are sent again;
 *   3. what still failed (permanent at once, or out of retries) goes to the DLQ, except
 *      when the sink's server is unreachable: those are held, not the events' fault.
 * The runner (./runner.ts) owns the consumer, the offsets and the pauses around it.
 */

/** What became of a unit. */
export type UnitOutcome =
  /** Every record is in the sink or in the DLQ: its offsets may be committed. */
  | 'delivered'
  /** Not delivered now (the circuit is open, the sink unreachable, or the unit cancelled): read it again later; nothing of it was dead-lettered. */
  | 'held'
  /** The sink no longer holds its generation marker (./sink-state.ts): neither retried nor dead-lettered; check the sink's state again. */
  | 'state-lost';

/** The unit to deliver: where its records come from, the records, and the offsets to store with them (a sink that keeps its own). */
export interface DeliveryUnit {
  topic: string;
  partition: number;
  records: readonly ConsumedRecord[];
  offsets?: OffsetsToStore;
  /** When the consumer handed these records over (ms since the epoch), for the per-stage latency (./stages.ts). */
  receivedAt?: number;
}

/**
 * The per-stage latency (./stages.ts) is observed for one delivered event in this many, a
 * systematic sample. Observed for every event, prom-client's histogram observe (it hashes
 * the labels each time) was 3.8 % of a one-process `stream`'s busy time at 5,000/s with
 * Redis and HTTP, plus its label hashing; one in 8 still gives a deliverer at 100 events/s
 * 750 observations a minute, plenty for a p99. processing_latency_seconds stays per event.
 */
export const STAGE_SAMPLE_EVERY = 8;

/** What the delivery counts, per sink (the runner's are Prometheus counters: `countersFor`). */
export interface DeliveryCounters {
  /** `events` records were handed to one `write` call. */
  attempted(events: number): void;
  /** One record landed; `latencySeconds`: from its PostgreSQL commit to the sink's answer, when the event says when it committed. */
  delivered(op: string, latencySeconds: number | undefined, stages?: Partial<Record<DeliveryStage, number>>): void;
  /** One record of a write failed (per record and attempt). */
  failed(errorClass: string): void;
  /** One record went to the DLQ. */
  deadLettered(errorClass: string): void;
}

/** Time, given so the tests can see the waits without waiting. */
export interface DeliveryClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Waits `ms`, or less when `signal` aborts first. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: DeliveryClock = { now: () => Date.now(), sleep: sleepUnlessAborted };

export interface UnitDeliveryOptions {
  /** The sink's name, for the DLQ headers, the target header and the log lines, and its write. */
  sink: Pick<Sink, 'name' | 'write'>;
  /** Parse, validate and enrich one record. */
  prepare(record: ConsumedRecord, at: { topic: string; partition: number }): Prepared;
  /** Retries with backoff for RetryableWriteError (./policies.ts retryPolicyFor). */
  retry: RetryPolicy;
  /** The sink's circuit breaker (./policies.ts breakerFor), shared by all its units. */
  breaker: CircuitBreakerPolicy;
  /** Where letters go; resolves once they are stored. */
  dlq: { write(letters: DeadLetter[]): Promise<void> };
  counters: DeliveryCounters;
  logger: Logger;
  clock?: DeliveryClock;
}

type Failed = Extract<WriteResult, { ok: false }>;
type Pending = SinkRecord & { raw: ConsumedRecord };

export class UnitDelivery {
  private readonly clock: DeliveryClock;
  /** The sink is unreachable: said once, until the circuit closes again. */
  private outage = false;
  /** Events delivered by this instance, for the stage sample (STAGE_SAMPLE_EVERY). */
  private deliveredCount = 0;

  constructor(private readonly o: UnitDeliveryOptions) {
    this.clock = o.clock ?? systemClock;
    o.breaker.onReset(() => {
      if (this.outage) o.logger.info(`${o.sink.name} reachable again: delivering what waited`);
      this.outage = false;
    });
  }

  async deliver({ topic, partition, records: messages, offsets, receivedAt }: DeliveryUnit, signal: AbortSignal): Promise<UnitOutcome> {
    const { sink, breaker, counters, logger } = this.o;
    // No early return on an open state: cockatiel moves to half-open inside execute() once
    // halfOpenAfter has passed, so the probe has to go through it.
    const letters: DeadLetter[] = [];
    const records: Pending[] = [];
    const at = { topic, partition };
    const now = () => new Date(this.clock.now()).toISOString();
    for (const m of messages) {
      // Meant for other sinks only (a one-sink backfill, ../event/targets.ts): passed, like a delivered record.
      if (!isForSink(m.headers, sink.name)) continue;
      const p = this.o.prepare(m, at);
      if (p.ok) records.push({ event: p.event, topic, partition, offset: m.offset, raw: m });
      else letters.push(this.letter(p.eventId, m, at, p, 1, now(), now()));
    }
    // Invalid events reach the DLQ before any offset that passes them is stored.
    await this.deadLetter(letters);

    let pending = records;
    const firstFailure = new Map<string, string>();
    const lastError = new Map<string, Failed>();
    let attempts = 0;
    let retryAt = 0;
    const failedForGood: Array<{ record: Pending; failure: Failed }> = [];

    const attempt = async (): Promise<void> => {
      if (attempts > 0) {
        // Told when to come back (Retry-After): wait at least that long in all (cockatiel's
        // backoff already passed), without holding anything but this unit.
        const wait = retryAt - this.clock.now();
        if (wait > 0) await this.clock.sleep(wait, signal);
        // Another unit opened the circuit meanwhile: stop here, undelivered, rather than
        // retry into a sink known to be down (the half-open probe decides when to go on).
        if (breaker.state === CircuitState.Open) throw new Cancelled();
      }
      if (signal.aborted) throw new Cancelled();
      attempts++;
      retryAt = 0;
      counters.attempted(pending.length);
      const results = await sink.write(pending, offsets).catch(
        (err: Error): WriteResult[] => pending.map(() => ({ ok: false, permanent: false, errorClass: 'sink_exception', message: err.message })),
      );
      // The sink lost its state since it was checked: no retry, no DLQ; the next batch checks it again.
      if (results.some((r) => !r.ok && r.errorClass === SINK_STATE_LOST)) throw new StateLost();
      const retryable: Pending[] = [];
      const ackedAt = this.clock.now();
      let retryAfterMs = 0;
      pending.forEach((record, i) => {
        const r = results[i] ?? { ok: false, permanent: false, errorClass: 'no_result', message: 'the sink returned no result for this record' };
        if (r.ok) {
          const committed = Date.parse(record.event.commit_ts);
          const stages = ++this.deliveredCount % STAGE_SAMPLE_EVERY === 0 ? deliveryStages({ commitTs: record.event.commit_ts, recordTimestampMs: Number(record.raw.timestamp), receivedAtMs: receivedAt, writtenAtMs: ackedAt }) : undefined;
          counters.delivered(record.event.op, Number.isFinite(committed) ? Math.max(0, (ackedAt - committed) / 1000) : undefined, stages);
          return;
        }
        counters.failed(r.errorClass);
        if (!firstFailure.has(record.offset)) firstFailure.set(record.offset, now());
        lastError.set(record.offset, r);
        if (r.permanent) failedForGood.push({ record, failure: r });
        else {
          retryable.push(record);
          if (r.retryAfterMs !== undefined) retryAfterMs = Math.max(retryAfterMs, r.retryAfterMs);
        }
      });
      pending = retryable;
      if (pending.length > 0) {
        retryAt = retryAfterMs > 0 ? ackedAt + retryAfterMs : 0;
        const sample = lastError.get(pending[0]!.offset)!;
        throw new RetryableWriteError(`${pending.length} event(s) not delivered: ${sample.errorClass}: ${sample.message}`, retryAfterMs || undefined);
      }
    };

    try {
      await breaker.execute(() => this.o.retry.execute(attempt));
    } catch (err) {
      // The circuit is open, or this unit was cancelled: it is read again later. What of it
      // already landed is idempotent to write again.
      if (err instanceof StateLost) return 'state-lost';
      if (err instanceof BrokenCircuitError || err instanceof Cancelled) return 'held';
      if (!(err instanceof RetryableWriteError)) throw err;
      if (pending.every((r) => isUnreachable(lastError.get(r.offset)?.errorClass ?? ''))) {
        // The sink's server is down or restarting: not the events' fault. The breaker has
        // opened; they are read again once it answers. One line per outage, not per retry.
        if (!this.outage) logger.warn(`${sink.name} unreachable: holding its events until it answers (nothing dead-lettered)`, { error: err.message });
        this.outage = true;
        return 'held';
      }
      // Out of retries: what is still pending goes to the DLQ (the breaker counted it).
      for (const record of pending) failedForGood.push({ record, failure: lastError.get(record.offset)! });
      logger.warn('retries exhausted: sending to the DLQ', { events: pending.length, error: err.message });
    }
    await this.deadLetter(failedForGood.map(({ record, failure }) => this.letter(record.event.id, record.raw, at, failure, attempts, firstFailure.get(record.offset)!, now())));
    return 'delivered';
  }

  private async deadLetter(letters: DeadLetter[]): Promise<void> {
    await this.o.dlq.write(letters);
    for (const l of letters) this.o.counters.deadLettered(l.errorClass);
  }

  private letter(
    eventId: string,
    m: ConsumedRecord,
    at: { topic: string; partition: number },
    why: { errorClass: string; message: string },
    attempts: number,
    first: string,
    last: string,
  ): DeadLetter {
    return {
      sink: this.o.sink.name,
      eventId,
      key: m.key?.toString() ?? '',
      value: m.value?.toString() ?? '',
      errorClass: why.errorClass,
      message: why.message,
      attempts,
      firstFailureAt: first,
      lastFailureAt: last,
      source: { topic: at.topic, partition: at.partition, offset: m.offset },
    };
  }
}

/** The delivery's counts as the pipeline's Prometheus metrics, labelled with the sink. */
export function countersFor(metrics: PipelineMetrics, sink: string): DeliveryCounters {
  const label = { sink };
  return {
    attempted: (events) => metrics.sinkAttempts.inc(label, events),
    delivered: (op, latencySeconds, stages) => {
      metrics.eventsProcessed.inc({ sink, op });
      if (latencySeconds !== undefined) metrics.processingLatency.observe(label, latencySeconds);
      for (const stage of DELIVERY_STAGES) {
        const seconds = stages?.[stage];
        if (seconds !== undefined) metrics.deliveryStageSeconds.observe({ sink, stage }, seconds);
      }
    },
    failed: (errorClass) => metrics.sinkErrors.inc({ sink, class: errorClass }),
    deadLettered: (errorClass) => metrics.dlqEvents.inc({ sink, class: errorClass }),
  };
}

/** A unit gave up without a verdict (cancelled, or the circuit opened): not dead-lettered; never closes a half-open circuit. */
class Cancelled extends UnitCancelledError {}

/** A write refused because the sink no longer holds its generation marker: neither retried nor dead-lettered. */
class StateLost extends UnitCancelledError {}
