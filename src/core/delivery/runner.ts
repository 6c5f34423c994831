import type { CircuitBreakerPolicy, RetryPolicy } from 'cockatiel';
import { BatchConsumer, type BatchContext, type ConsumedRecord } from '../clients/batch-consumer.js';
import { nativeSettingsOf, type Kafka, type OffsetsAdmin } from '../clients/rdkafka.js';
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics.js';
import { sleep } from '../timeout.js';
import { planUnits, type Unit } from './plan.js';
import { runSchedule } from './schedule.js';
import { countersFor, UnitDelivery } from './unit-delivery.js';
import type { DlqWriter } from './dlq.js';
import type { Enricher } from './enrich.js';
import { prepare } from './prepare.js';
import type { SharedTransforms } from './transform-once.js';
import type { ChangeEvent } from '../event/envelope.js';
import type { Sink } from '../sinks/contract.js';
import { SinkStateKeeper, type SinkStateProblem } from './sink-state.js';
import type { SinkBackfill } from './rebuild-backfill.js';
import { RetainedReplay, type HistoryLost } from './replay-retained.js';
import { isKafkaChurn } from '../clients/librdkafka.js';
import { isRoutineRetry } from '../clients/rdkafka.js';

export interface RunnerOptions {
  topic: string;
  group: string;
  maxBatchEvents: number;
  partitionsConsumedConcurrently: number;
  halfOpenAfterMs: number;
  sessionTimeoutMs: number;
  /** kafka.maxRecordBytes: a fetch must hold at least one whole record of that size. */
  maxRecordBytes?: number;
  /**
   * For a sink that stores offsets and generation markers (Redis): what to do when it comes
   * back without its state (./sink-state.ts), and how often to look. Absent: no check.
   */
  lostState?: { policy: 'auto' | 'manual'; brokers: string; checkEveryMs: number; backfill?: SinkBackfill };
  /** Shared with the other sinks of this process: each record is transformed once (./transform-once.ts). */
  transforms?: SharedTransforms;
  /** Where the periodic admin calls (sink state, history) go; `kafka` when absent (clients/restart-safe-admin.ts says why the deliverer gives its own). */
  adminClients?: { admin(): OffsetsAdmin };
  /** The consumer hit a fatal error and cannot go on. */
  onCrash: (error: Error) => void;
}

/** What a runner is built from: its sink, the policies and writers its units use (./unit-delivery.ts), and the consumer's settings. */
export interface SinkRunnerOptions extends RunnerOptions {
  kafka: Kafka;
  sink: Sink;
  /** Where the letters go (a collecting one for replay-dlq). */
  dlq: Pick<DlqWriter, 'write'>;
  /** Without shared transforms, each record is prepared with these (./prepare.ts). */
  enrich: Enricher;
  rowProblems: (e: ChangeEvent) => string[];
  retry: RetryPolicy;
  breaker: CircuitBreakerPolicy;
  metrics: PipelineMetrics;
  logger: Logger;
}

/** A sink with many units in flight commits its progress in the background at most this often (SinkRunner.onBatch). */
const BACKGROUND_COMMIT_MS = 50;

/** A consumer step longer than this, with lag waiting, is a stall (SinkRunner.lagged): reads time out after 500 ms, retries wait 5 s at most. */
const STALLED_STEP_MS = 30_000;

/** Record key, headers and batch framing beyond the value (see kafka/topics.ts). */
const FETCH_HEADROOM_BYTES = 1024 * 1024;

/**
 * One sink's share of delivery: its own consumer group (read_committed), so a slow or
 * failing sink never holds back the others. A partition's batch is cut into units (the
 * sink says how big and how many at once: ./plan.ts, ./schedule.ts), and each unit is
 * delivered by ./unit-delivery.ts: invalid events to the DLQ first, the rest written under
 * retry inside the breaker, what still failed to the DLQ. The runner keeps the Kafka side:
 * the consumer, offsets, pause and resume, and the sink-state and history checks.
 * Offsets move only past leading units that are finished, so every event ends up in the
 * sink or in the DLQ. A row's events are written in order: a unit waits for the earlier
 * units of its rows. When the breaker opens, the partitions pause and what was not
 * delivered is read again after the half-open delay.
 */
export class SinkRunner {
  private consumer: BatchConsumer | null = null;
  private resumeTimer: NodeJS.Timeout | undefined;
  private readonly progress;
  private readonly state: SinkStateKeeper | null;
  private readonly history: RetainedReplay | null;
  private stateTimer: NodeJS.Timeout | undefined;
  private assigned: number[] = [];
  /** Where each partition's batch is (units running, waiting for a commit), and the stop's step: for `describe`. */
  private readonly batchSteps = new Map<number, string>();
  private stopStep: string | null = null;

  private readonly kafka: Kafka;
  private readonly sink: Sink;
  private readonly logger: Logger;
  private readonly unitDelivery: UnitDelivery;

  constructor(private readonly options: SinkRunnerOptions) {
    const { kafka, sink, breaker, metrics, logger } = options;
    this.kafka = kafka;
    this.sink = sink;
    this.logger = logger;
    // Offsets stored with a unit's data claim everything before it is written too.
    if (sink.storesOffsets && (sink.units?.inFlight ?? 1) > 1) throw new Error(`${sink.name} sink stores offsets: it must write one unit at a time`);
    this.progress = metrics.progress.watch(`sink ${sink.name}`);
    this.progress.explainWith(() => this.describe());
    const lost = options.lostState;
    this.state =
      lost && sink.storesOffsets && sink.stateMarkers && sink.markState
        ? new SinkStateKeeper(options.adminClients ?? kafka, sink, logger, { topic: options.topic, group: options.group, policy: lost.policy, brokers: lost.brokers, ...(lost.backfill ? { backfill: lost.backfill } : {}) })
        : null;
    this.history = sink.onHistoryLost ? new RetainedReplay(options.adminClients ?? kafka, sink.name, options.topic, options.group, logger) : null;
    // A sink that lost its stored history (./replay-retained.ts): replay what the topic still holds. Once per runner, across restarts.
    if (this.history) sink.onHistoryLost!((what, atStart) => this.history!.request(what, atStart));
    // Built before the breaker's listeners below: its "reachable again" line comes before "circuit closed".
    this.unitDelivery = new UnitDelivery({
      sink,
      prepare: (m, { topic, partition }) => {
        const raw = m.value?.toString() ?? null;
        return options.transforms?.prepare(topic, partition, m.offset, raw) ?? prepare(raw, options.rowProblems, options.enrich);
      },
      retry: options.retry,
      breaker,
      dlq: options.dlq,
      counters: countersFor(metrics, sink.name),
      logger,
    });
    const sinkLabel = { sink: sink.name };
    metrics.circuitState.set(sinkLabel, 0);
    metrics.circuitOpenedAt.set(sinkLabel, 0);
    // Half-open and open again keeps the first opening: "open for N minutes" counts from there.
    let openedAt = 0;
    breaker.onBreak(() => {
      metrics.circuitState.set(sinkLabel, 1);
      if (openedAt === 0) metrics.circuitOpenedAt.set(sinkLabel, (openedAt = Date.now() / 1000));
      this.logger.warn('circuit open: pausing the sink', { resume_in_ms: options.halfOpenAfterMs });
      this.pause();
    });
    breaker.onHalfOpen(() => metrics.circuitState.set(sinkLabel, 2));
    breaker.onReset(() => {
      metrics.circuitState.set(sinkLabel, 0);
      metrics.circuitOpenedAt.set(sinkLabel, (openedAt = 0));
      this.logger.info('circuit closed: the sink answers again');
    });
  }

  async start(): Promise<void> {
    this.history?.reset();
    await this.sink.start();
    await this.history?.settle();
    const fetchBytes = (floor: number) => Math.max(floor, (this.options.maxRecordBytes ?? 0) + FETCH_HEADROOM_BYTES);
    const state = this.state;
    const consumer = new BatchConsumer({
      settings: nativeSettingsOf(this.kafka).settings,
      topic: this.options.topic,
      mode: { group: this.options.group, sessionTimeoutMs: this.options.sessionTimeoutMs },
      maxRecordsPerRound: Math.max(this.options.maxBatchEvents, 2000) * Math.max(1, this.options.partitionsConsumedConcurrently),
      maxPartitionFetchBytes: fetchBytes(4 * 1024 * 1024),
      maxFetchBytes: fetchBytes(10 * 1024 * 1024),
      concurrency: this.options.partitionsConsumedConcurrently,
      logger: this.logger,
      // Records arriving do not end a Kafka outage (outages.ts outageRecovered says why).
      eachBatch: (partition, messages, context) => this.onBatch(partition, messages, context),
      onAssign: async (partitions) => {
        this.assigned = partitions;
        // A sink that lost its history replays what the topic holds once it has its partitions (./replay-retained.ts).
        this.history?.assigned(partitions);
        // Which partitions are ours, checked again on every assignment (./sink-state.ts).
        if (state) {
          state.assign(partitions);
          return {};
        }
        // The sink's own offsets were written with its data: start from them, not from
        // Kafka's committed offsets (which may lag behind by the last batch).
        return this.sink.storesOffsets ? this.storedOffsets(partitions) : {};
      },
      // Transaction markers (and aborted records) after a partition's last event never reach
      // a batch, but librdkafka's position moves past them: commit that, as the Java consumer
      // does, else the group's lag never falls below one marker per partition.
      onIdle: async (partition, position) => {
        // A rebuild is done once the position reaches its target, markers included, even
        // where the group's offset (from before the loss) is already past it.
        this.state?.moved(partition, position);
        // Also where the group never committed: a sink that stores its own offsets may have
        // started at them, past everything, and have nothing left to deliver and commit.
        const committed = this.consumer?.lastCommitted(partition) ?? 0n;
        if (BigInt(position) <= committed) return;
        // Behind the partition's commits still on their way (commitBehind), never before them.
        await this.behind.get(partition);
        await this.consumer?.commit(partition, position).catch(() => {});
      },
      onFatal: (error) => this.options.onCrash(error),
    });
    this.consumer = consumer;
    this.history?.watch(consumer);
    await consumer.start();
    if (state) {
      this.stateTimer = setInterval(() => {
        void state.check(this.assigned, consumer).catch((err: Error) => {
          // Kafka gone or moving its coordinator: part of an outage (outages.ts), checked again next time.
          if (isKafkaChurn(err) || isRoutineRetry(err.message, {})) this.logger.debug('could not check the sink state', { error: err.message });
          else this.logger.warn('could not check the sink state', { error: err.message });
        });
      }, this.options.lostState!.checkEveryMs);
    }
  }

  private async storedOffsets(partitions: number[]): Promise<Record<number, string>> {
    const out: Record<number, string> = {};
    try {
      const stored = await this.sink.storedOffsets!(this.options.group);
      for (const partition of partitions) {
        const offset = stored[`${this.options.topic}:${partition}`];
        if (offset !== undefined) out[partition] = offset;
      }
    } catch (err) {
      // Kafka's committed offsets are at most one batch behind, and the sink is idempotent.
      this.logger.warn('could not read the offsets stored in the sink; starting from Kafka', { error: (err as Error).message });
    }
    return out;
  }

  private pause(): void {
    this.consumer?.pause();
    clearTimeout(this.resumeTimer);
    this.resumeTimer = setTimeout(() => {
      this.logger.info('circuit half-open: resuming for one probe');
      this.consumer?.resume();
    }, this.options.halfOpenAfterMs);
  }

  /** Kafka commits made behind the sink's own stored offsets, one partition's in order (./runner.ts commitUpTo). */
  private readonly behind = new Map<number, Promise<void>>();

  /**
   * Commits `next` for `partition` after the partition's earlier commits, without waiting:
   * for a sink that stores its offsets with its data, so Kafka's committed offset never
   * passes the sink's. A failure (a rebalance, Kafka away) is left to the next commit.
   */
  private commitBehind(partition: number, next: string): void {
    const consumer = this.consumer;
    if (!consumer) return;
    const chain = (this.behind.get(partition) ?? Promise.resolve())
      .then(() => consumer.commit(partition, next))
      .catch((err: Error) => this.logger.debug('offset commit behind the sink failed; the next one takes it', { partition, error: err.message }));
    this.behind.set(partition, chain);
    void chain.then(() => {
      if (this.behind.get(partition) === chain) this.behind.delete(partition);
    });
  }

  /** How this sink's records are cut into writes, and how many run at once per partition. */
  private get shape(): { size: number; inFlight: number } {
    return this.sink.units ?? { size: this.options.maxBatchEvents, inFlight: 1 };
  }

  private async onBatch(partition: number, messages: ConsumedRecord[], { isRunning, isStale, receivedAt }: BatchContext): Promise<void> {
    const topic = this.options.topic;
    if (messages.length === 0) return;
    if (this.state && !this.state.known(partition)) {
      // Before the first write to a partition: is the sink's state there (else rebuild it)?
      await this.state.check([partition], this.consumer!);
      if (isStale()) return; // sought to the sink's offsets, or to the start for a rebuild
    }
    this.progress.work();
    const { size, inFlight } = this.shape;
    // The record key is table + primary key: the row whose order must hold.
    const units = planUnits(messages.map((m) => m.key?.toString() ?? ''), size);
    const nextOffset = (u: Unit) => (BigInt(messages[u.to - 1]!.offset) + 1n).toString();
    let committed = 0;
    const commitUpTo = async (done: number) => {
      if (done <= committed) return;
      const unit = units[done - 1]!;
      // A sink that stores its offsets with its data (Redis) restarts from those; Kafka's
      // are for lag and monitoring only, so they are committed behind, off the delivery's
      // path: in line, each commit (a hop through libuv's thread pool to queue it in
      // librdkafka, longer when the pool is busy) held up the partition's next unit and the
      // consumer's next round.
      if (this.sink.storesOffsets) this.commitBehind(partition, nextOffset(unit));
      else await this.consumer?.commit(partition, nextOffset(unit));
      this.progress.progress(`partition ${partition} offset ${nextOffset(unit)}`);
      this.state?.moved(partition, nextOffset(unit));
      committed = done;
    };
    // A sink with many units in flight (HTTP) commits in the background as the leading
    // finished units grow: one commit at a time, at most one per BACKGROUND_COMMIT_MS, each
    // taking whatever finished meanwhile. A crash then re-sends only what finished within
    // that interval, not up to a whole batch of accepted events. Not one commit per unit:
    // the binding's commit returns once librdkafka has queued it, so with one event per
    // unit that loop committed after nearly every event (the HTTP deliverer spent 11 % of
    // its CPU in commitCb, and Kafka took an OffsetCommit per event).
    let target = 0;
    let background: Promise<void> | null = null;
    let lastBackgroundCommit = 0;
    let commitTimer: NodeJS.Timeout | undefined;
    const commitSoon = (done: number): Promise<void> => {
      target = Math.max(target, done);
      if (background !== null || commitTimer !== undefined || committed >= target) return Promise.resolve();
      const wait = lastBackgroundCommit + BACKGROUND_COMMIT_MS - Date.now();
      if (wait > 0) {
        commitTimer = setTimeout(() => {
          commitTimer = undefined;
          void commitSoon(target);
        }, wait);
        return Promise.resolve();
      }
      lastBackgroundCommit = Date.now();
      background = commitUpTo(target)
        .catch(() => {}) // a rebalance: the final commit below (or the next owner) decides
        .finally(() => {
          background = null;
          void commitSoon(target); // what finished during this commit, after the interval
        });
      return Promise.resolve();
    };

    const steps = this.batchSteps;
    steps.set(partition, `delivering ${units.length} unit(s) from offset ${messages[0]!.offset}`);
    const result = await runSchedule(units, inFlight, 1000, {
      run: async (u, signal) => {
        const unit = units[u]!;
        const began = Date.now();
        const delivered = await this.deliverUnit(topic, partition, messages.slice(unit.from, unit.to), signal, receivedAt);
        if (size > 1) this.logger.debug('unit', { partition, from: messages[unit.from]!.offset, events: unit.to - unit.from, delivered, ms: Date.now() - began });
        return delivered;
      },
      // One unit at a time (a sink that stores offsets): commit each, in line. Else in the background.
      progress: (done) => (inFlight === 1 ? commitUpTo(done) : commitSoon(done)),
      tick: async () => {
        // librdkafka heartbeats on its own thread, and a rebalance waits for this batch (no
        // read happens while one is in hand); a seek made meanwhile (a rebuild's) stops it.
        if (!isRunning() || isStale()) throw new BatchStopped();
      },
    });

    // The batch's own final commit below takes what a pending background one would have.
    clearTimeout(commitTimer);
    commitTimer = undefined;
    target = -1; // no background commit starts after this
    steps.set(partition, `${result.done} of ${units.length} unit(s) done; waiting for the background offset commit`);
    await background;
    steps.set(partition, `${result.done} of ${units.length} unit(s) done; committing offset ${result.done > 0 ? nextOffset(units[result.done - 1]!) : '(none)'}`);
    try {
      await this.finishBatch(partition, messages, units, result, commitUpTo, isStale);
    } finally {
      steps.delete(partition);
    }
  }

  /** The end of one partition's batch: its final commit, and a seek back over what the circuit held. */
  private async finishBatch(partition: number, messages: ConsumedRecord[], units: Unit[], result: { done: number; error?: unknown }, commitUpTo: (done: number) => Promise<void>, isStale: () => boolean): Promise<void> {
    if (result.error !== undefined) {
      // Stopping or sought elsewhere: keep what is certain (best effort); the consumer reads the rest again.
      await commitUpTo(result.done).catch(() => {});
      if (result.error instanceof BatchStopped) return;
      throw result.error;
    }
    await commitUpTo(result.done);
    if (result.done < units.length) {
      // The circuit is open (or half-open with its probe elsewhere): read what is left again
      // later; the short pause keeps a half-open sink from being polled in a loop.
      // Not over a seek made meanwhile (a rebuild's, to the partition's start).
      if (!isStale()) this.consumer?.seek(partition, messages[units[result.done]!.from]!.offset);
      await sleep(250);
    }
  }

  /**
   * The same pipeline over records given by the caller instead of a consumer (replay-dlq):
   * prepare, write under retry and breaker, dead-letter what fails, through the DLQ writer
   * given to the constructor. The sink must be started. True when every record is in the
   * sink or the DLQ; false when the breaker would not let them through.
   */
  deliverRecords(topic: string, partition: number, messages: ConsumedRecord[]): Promise<boolean> {
    return this.deliverUnit(topic, partition, messages, new AbortController().signal);
  }

  /**
   * One unit (./unit-delivery.ts): true when every record is in the sink or the DLQ; false
   * when the breaker would not let it through or it was cancelled (nothing of it goes to
   * the DLQ then).
   */
  private async deliverUnit(topic: string, partition: number, messages: ConsumedRecord[], signal: AbortSignal, receivedAt?: number): Promise<boolean> {
    // Stored with the data by a sink that keeps offsets; such a sink runs one unit at a
    // time, so everything before this unit is already written.
    const next = (BigInt(messages[messages.length - 1]!.offset) + 1n).toString();
    const offsets = this.sink.storesOffsets
      ? { group: this.options.group, next: { [`${topic}:${partition}`]: next }, ...(this.state ? { generation: this.state.generation(partition) } : {}) }
      : undefined;
    const outcome = await this.unitDelivery.deliver({ topic, partition, records: messages, ...(offsets ? { offsets } : {}), ...(receivedAt === undefined ? {} : { receivedAt }) }, signal);
    if (outcome === 'state-lost') this.state?.forget([partition]);
    return outcome === 'delivered';
  }

  /**
   * The sink's consumer group has `lag` records not committed yet. Work is waiting if this
   * runner has no consumer (it could not start), or if its consumer has been in one step for
   * over STALLED_STEP_MS (a read that never returns, a seek never applied, a commit never
   * answered): such a consumer calls no batch, so without this its stall would leave /ready
   * green while the lag grows. Not for a consumer reading normally: its group's lag can be a
   * member elsewhere's work, or a commit lost without a rebalance, and a batch says itself
   * when it has work.
   */
  lagged(lag: number): void {
    if (lag <= 0) return;
    const phase = this.consumer?.phase();
    if (!phase || phase.forMs > STALLED_STEP_MS) this.progress.work();
  }

  /** The sink's last loss of history (a dropped BigQuery table), for /ready and `status`. */
  historyLost(): HistoryLost | null {
    return this.history?.warning() ?? null;
  }

  /** A sink being rebuilt, or refusing to go on, for /ready and `status`. */
  stateProblem(): SinkStateProblem | null {
    return this.state?.problem() ?? null;
  }

  /**
   * What this runner is doing, in words: its consumer's step, each partition's batch, and the
   * step of a stop under way. A stop or a stall that takes long says this (./deliverer.ts).
   */
  describe(): string {
    const phase = this.consumer?.phase();
    const parts = [
      this.stopStep ? `stopping: ${this.stopStep}` : null,
      phase ? `consumer ${phase.doing} for ${Math.round(phase.forMs / 1000)} s (partitions ${phase.assigned.join(',') || 'none'})` : 'no consumer',
      ...[...this.batchSteps].map(([p, step]) => `partition ${p}: ${step}`),
    ];
    return parts.filter((x) => x !== null).join('; ');
  }

  async stop(): Promise<void> {
    clearTimeout(this.resumeTimer);
    clearInterval(this.stateTimer);
    this.stopStep = 'stopping the sink-state checks';
    await this.state?.stop();
    this.stopStep = 'stopping the history replay';
    await this.history?.stop();
    // The last offsets committed behind the sink's own go out before the consumer leaves.
    this.stopStep = 'waiting for the offset commits behind the sink';
    await Promise.all(this.behind.values());
    this.stopStep = 'waiting for the batch in hand, then closing the consumer';
    await this.consumer?.stop().catch(() => {});
    this.consumer = null;
    this.stopStep = 'stopping the sink';
    await this.sink.stop();
    this.stopStep = null;
  }
}

/** The batch stops because the consumer is stopping or the partition was sought elsewhere. */
class BatchStopped extends Error {}

