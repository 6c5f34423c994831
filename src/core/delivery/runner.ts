import { BrokenCircuitError, type CircuitBreakerPolicy, type RetryPolicy } from 'cockatiel';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics.js';
import { sleep } from '../timeout.js';
import type { DeadLetter, DlqWriter } from './dlq.js';
import type { Enricher } from './enrich.js';
import { RetryableWriteError } from './policies.js';
import { prepare } from './prepare.js';
import type { ChangeEvent } from '../event/envelope.js';
import type { Sink, SinkRecord, WriteResult } from './sink.js';

export interface RunnerOptions {
  topic: string;
  group: string;
  maxBatchEvents: number;
  partitionsConsumedConcurrently: number;
  halfOpenAfterMs: number;
  sessionTimeoutMs: number;
  /** kafkajs gave up on the consumer (it does not restart itself for some errors). */
  onCrash: (error: Error) => void;
}

type Failed = Extract<WriteResult, { ok: false }>;

/**
 * One sink's share of delivery: its own consumer group (read_committed), so a slow or
 * failing sink never holds back the others. Per chunk of a partition's batch:
 *   1. parse, validate, enrich; what is invalid goes to the DLQ first;
 *   2. write to the sink under retry (backoff) inside the breaker;
 *   3. what still failed (permanent, or out of retries) goes to the DLQ;
 *   4. only then the offsets move on (stored with the data for a sink that keeps them).
 * Every event therefore ends up in the sink or in the DLQ. When the breaker opens, the
 * partitions pause and the chunk is read again after the half-open delay.
 */
export class SinkRunner {
  private consumer: Consumer | null = null;
  private resumeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly sink: Sink,
    private readonly dlq: DlqWriter,
    private readonly enrich: Enricher,
    private readonly rowProblems: (e: ChangeEvent) => string[],
    private readonly retry: RetryPolicy,
    private readonly breaker: CircuitBreakerPolicy,
    private readonly metrics: PipelineMetrics,
    private readonly logger: Logger,
    private readonly options: RunnerOptions,
  ) {
    const sinkLabel = { sink: sink.name };
    metrics.circuitState.set(sinkLabel, 0);
    breaker.onBreak(() => {
      metrics.circuitState.set(sinkLabel, 1);
      this.logger.warn('circuit open: pausing the sink', { resume_in_ms: options.halfOpenAfterMs });
      this.pause();
    });
    breaker.onHalfOpen(() => metrics.circuitState.set(sinkLabel, 2));
    breaker.onReset(() => {
      metrics.circuitState.set(sinkLabel, 0);
      this.logger.info('circuit closed: the sink answers again');
    });
  }

  async start(): Promise<void> {
    await this.sink.start();
    const consumer = this.kafka.consumer({
      groupId: this.options.group,
      readUncommitted: false,
      maxBytesPerPartition: 4 * 1024 * 1024,
      sessionTimeout: this.options.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.options.sessionTimeoutMs / 5)),
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    if (this.sink.storesOffsets) {
      // The sink's own offsets were written with its data: start from them, not from
      // Kafka's committed offsets (which may lag behind by the last batch).
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        void this.seekToStored(payload.memberAssignment[this.options.topic] ?? []);
      });
    }
    // A batch of only transaction markers (or aborted records) never reaches eachBatch:
    // kafkajs moves past it but, without auto-commit, does not commit it, so lag would
    // never fall below one marker per partition. Nothing in such a batch is for a sink.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize !== 0) return;
      const offset = (BigInt(payload.lastOffset) + 1n).toString();
      void consumer.commitOffsets([{ topic: payload.topic, partition: payload.partition, offset }]).catch(() => {});
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) this.options.onCrash(payload.error);
    });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  private async seekToStored(partitions: number[]): Promise<void> {
    try {
      const stored = await this.sink.storedOffsets!(this.options.group);
      for (const partition of partitions) {
        const offset = stored[`${this.options.topic}:${partition}`];
        if (offset !== undefined) this.consumer?.seek({ topic: this.options.topic, partition, offset });
      }
    } catch (err) {
      // Kafka's committed offsets are at most one batch behind, and the sink is idempotent.
      this.logger.warn('could not read the offsets stored in the sink; starting from Kafka', { error: (err as Error).message });
    }
  }

  private pause(): void {
    this.consumer?.pause([{ topic: this.options.topic }]);
    clearTimeout(this.resumeTimer);
    this.resumeTimer = setTimeout(() => {
      this.logger.info('circuit half-open: resuming for one probe');
      this.consumer?.resume([{ topic: this.options.topic }]);
    }, this.options.halfOpenAfterMs);
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    for (let i = 0; i < batch.messages.length; i += this.options.maxBatchEvents) {
      if (!isRunning() || isStale()) return;
      const chunk = batch.messages.slice(i, i + this.options.maxBatchEvents);
      const began = Date.now();
      const delivered = await this.deliverChunk(topic, partition, chunk, heartbeat);
      this.logger.debug('chunk', { partition, from: chunk[0]!.offset, events: chunk.length, delivered, ms: Date.now() - began });
      if (!delivered) {
        // The circuit is open (or half-open with its one probe elsewhere): read this chunk
        // again later; the short pause keeps a half-open sink from being polled in a loop.
        this.consumer?.seek({ topic, partition, offset: chunk[0]!.offset });
        await sleep(250);
        return;
      }
      const last = chunk[chunk.length - 1]!;
      resolveOffset(last.offset);
      await this.consumer?.commitOffsets([{ topic, partition, offset: (BigInt(last.offset) + 1n).toString() }]);
      await heartbeat();
    }
    // The whole batch is done: move past what followed its last event in the log too
    // (transaction markers, aborted records), as the Java consumer does; else the group's
    // lag never falls below one marker per partition.
    const end = batch.lastOffset();
    const lastEvent = batch.messages[batch.messages.length - 1]?.offset;
    if (lastEvent !== undefined && BigInt(end) > BigInt(lastEvent)) {
      resolveOffset(end);
      await this.consumer?.commitOffsets([{ topic, partition, offset: (BigInt(end) + 1n).toString() }]);
    }
  }

  /** False when the breaker is open and nothing of the chunk was delivered. */
  private async deliverChunk(topic: string, partition: number, messages: KafkaMessage[], heartbeat: () => Promise<void>): Promise<boolean> {
    // No early return on an open state: cockatiel moves to half-open inside execute() once
    // halfOpenAfter has passed, so the probe has to go through it.
    const letters: DeadLetter[] = [];
    const records: Array<SinkRecord & { raw: KafkaMessage }> = [];
    const now = () => new Date().toISOString();
    for (const m of messages) {
      const raw = m.value?.toString() ?? null;
      const p = prepare(raw, this.rowProblems, this.enrich);
      if (p.ok) records.push({ event: p.event, topic, partition, offset: m.offset, raw: m });
      else letters.push(this.letter(p.eventId, m, { topic, partition }, p.errorClass, p.message, 1, now(), now()));
    }
    // Invalid events reach the DLQ before any offset that passes them is stored.
    await this.dlq.write(letters);
    for (const l of letters) this.metrics.dlqEvents.inc({ sink: this.sink.name, class: l.errorClass });

    const next = (BigInt(messages[messages.length - 1]!.offset) + 1n).toString();
    const offsets = this.sink.storesOffsets ? { group: this.options.group, next: { [`${topic}:${partition}`]: next } } : undefined;
    let pending = records;
    const firstFailure = new Map<string, string>();
    const lastError = new Map<string, Failed>();
    let attempts = 0;
    let retryAfterMs: number | undefined;
    const failedForGood: Array<{ record: (typeof records)[number]; failure: Failed }> = [];

    // Retries can outlast the session timeout: keep telling the group this member is alive.
    // Its errors must propagate: REBALANCE_IN_PROGRESS tells kafkajs to stop this batch and
    // rejoin; swallowing it kept a busy member working until the group expelled it and its
    // commits failed, over and over. What this chunk already delivered is delivered again
    // after the rebalance, which every sink absorbs (versions, event ids, Idempotency-Key).
    const keepAlive = () => heartbeat();
    const attempt = async (): Promise<void> => {
      attempts++;
      await keepAlive();
      for (let waited = 0; retryAfterMs && waited < retryAfterMs; waited += 1000) {
        await sleep(Math.min(1000, retryAfterMs - waited));
        await keepAlive();
      }
      retryAfterMs = undefined;
      this.metrics.sinkAttempts.inc({ sink: this.sink.name }, pending.length);
      const results = await this.sink.write(pending, offsets).catch(
        (err: Error): WriteResult[] => pending.map(() => ({ ok: false, permanent: false, errorClass: 'sink_exception', message: err.message })),
      );
      const retryable: typeof records = [];
      const ackedAt = Date.now();
      pending.forEach((record, i) => {
        const r = results[i] ?? { ok: false, permanent: false, errorClass: 'no_result', message: 'the sink returned no result for this record' };
        if (r.ok) {
          this.metrics.eventsProcessed.inc({ sink: this.sink.name, op: record.event.op });
          const committed = Date.parse(record.event.commit_ts);
          if (Number.isFinite(committed)) this.metrics.processingLatency.observe({ sink: this.sink.name }, Math.max(0, (ackedAt - committed) / 1000));
          return;
        }
        this.metrics.sinkErrors.inc({ sink: this.sink.name, class: r.errorClass });
        if (!firstFailure.has(record.offset)) firstFailure.set(record.offset, now());
        lastError.set(record.offset, r);
        if (r.permanent) failedForGood.push({ record, failure: r });
        else {
          retryable.push(record);
          if (r.retryAfterMs !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, r.retryAfterMs);
        }
      });
      pending = retryable;
      if (pending.length > 0) {
        const sample = lastError.get(pending[0]!.offset)!;
        throw new RetryableWriteError(`${pending.length} event(s) not delivered: ${sample.errorClass}: ${sample.message}`, retryAfterMs);
      }
    };

    try {
      await this.breaker.execute(() => this.retry.execute(attempt));
    } catch (err) {
      if (err instanceof BrokenCircuitError) {
        // Opened by another partition's chunk meanwhile: nothing here was delivered for
        // good unless some records already landed; those are idempotent to write again.
        if (attempts === 0) return false;
      } else if (!(err instanceof RetryableWriteError)) {
        throw err;
      }
      // Out of retries: what is still pending goes to the DLQ (the breaker counted it).
      for (const record of pending) failedForGood.push({ record, failure: lastError.get(record.offset)! });
      this.logger.warn('retries exhausted: sending to the DLQ', { events: pending.length, error: (err as Error).message });
    }
    const dead = failedForGood.map(({ record, failure }) =>
      this.letter(record.event.id, record.raw, { topic, partition }, failure.errorClass, failure.message, attempts, firstFailure.get(record.offset)!, now()),
    );
    await this.dlq.write(dead);
    for (const l of dead) this.metrics.dlqEvents.inc({ sink: this.sink.name, class: l.errorClass });
    return true;
  }

  private letter(
    eventId: string,
    m: KafkaMessage,
    at: { topic: string; partition: number },
    errorClass: string,
    message: string,
    attempts: number,
    first: string,
    last: string,
  ): DeadLetter {
    return {
      sink: this.sink.name,
      eventId,
      key: m.key?.toString() ?? '',
      value: m.value?.toString() ?? '',
      errorClass,
      message,
      attempts,
      firstFailureAt: first,
      lastFailureAt: last,
      source: { topic: at.topic, partition: at.partition, offset: m.offset },
    };
  }

  async stop(): Promise<void> {
    clearTimeout(this.resumeTimer);
    await this.consumer?.disconnect().catch(() => {});
    this.consumer = null;
    await this.sink.stop();
  }
}
