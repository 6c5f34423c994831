import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ProgressBoard } from './health/progress.js';

/**
 * The pipeline's Prometheus metrics, one registry per process. The names are the ones the
 * alert rules in docker/ and the dashboards use: change them there too.
 */
export class PipelineMetrics {
  readonly registry = new Registry();
  /** Stuck detection (health/progress.ts): each component reports work and progress here. */
  readonly progress = new ProgressBoard();

  readonly captureEvents = new Counter({
    name: 'streamctl_capture_events_total',
    help: 'Changes written to Kafka by capture',
    labelNames: ['table', 'op'] as const,
    registers: [this.registry],
  });
  readonly oversizeEvents = new Counter({
    name: 'streamctl_oversize_events_total',
    help: 'Rows over kafka.maxRecordBytes, written as oversize markers (each is in every sink\'s DLQ; backfill the row by its key once the limit is raised)',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });

  readonly captureTransactions = new Counter({
    name: 'streamctl_capture_kafka_transactions_total',
    help: 'Kafka transactions committed by capture',
    registers: [this.registry],
  });
  readonly captureBatchSize = new Histogram({
    name: 'streamctl_capture_batch_events',
    help: 'Changes per Kafka transaction',
    buckets: [1, 10, 100, 500, 1000, 2000, 5000, 10000, 50000],
    registers: [this.registry],
  });
  readonly captureCommitSeconds = new Histogram({
    name: 'streamctl_capture_commit_latency_seconds',
    help: 'Time to write and commit one Kafka transaction',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly slotLagBytes = new Gauge({
    name: 'streamctl_replication_slot_lag_bytes',
    help: 'WAL the replication slot holds back: current WAL position minus the confirmed flush position',
    labelNames: ['slot'] as const,
    registers: [this.registry],
  });
  readonly confirmedLsn = new Gauge({
    name: 'streamctl_capture_confirmed_lsn',
    help: 'Last LSN confirmed to PostgreSQL (as a number)',
    registers: [this.registry],
  });

  // Delivery: the names of the original design (alert rules and dashboards use them).
  readonly eventsProcessed = new Counter({
    name: 'events_processed_total',
    help: 'Events a sink acknowledged',
    labelNames: ['sink', 'op'] as const,
    registers: [this.registry],
  });
  readonly processingLatency = new Histogram({
    name: 'processing_latency_seconds',
    help: 'PostgreSQL commit to sink acknowledgement',
    labelNames: ['sink'] as const,
    // Fine below 300 ms, where the latency objective (p99 < 200 ms) is judged: a quantile
    // read from a histogram is only as exact as the bucket it falls in.
    buckets: [0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly deliveryStageSeconds = new Histogram({
    name: 'streamctl_delivery_stage_seconds',
    help: 'Where delivery time goes, per stage (delivery/stages.ts): capture = PostgreSQL commit to the Kafka record\'s timestamp, kafka = that timestamp to the consumer handing the record over, write = handed over to the sink\'s acknowledgement; observed for one delivered event in 8 (a systematic sample)',
    labelNames: ['sink', 'stage'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly sinkErrors = new Counter({
    name: 'sink_errors_total',
    help: 'Failed sink writes, per event and attempt',
    labelNames: ['sink', 'class'] as const,
    registers: [this.registry],
  });
  readonly sinkAttempts = new Counter({
    name: 'sink_write_attempts_total',
    help: 'Events a sink was asked to write, per attempt (the error rate is sink_errors_total / this)',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'queue_depth',
    help: 'Consumer lag of a sink: events in the changes topic it has not yet acknowledged',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });
  readonly dlqEvents = new Counter({
    name: 'dlq_events_total',
    help: 'Events sent to the dead-letter queue',
    labelNames: ['sink', 'class'] as const,
    registers: [this.registry],
  });
  readonly dlqDepth = new Gauge({
    name: 'dlq_depth',
    help: 'Records in the dead-letter topic',
    registers: [this.registry],
  });
  readonly dlqReplayed = new Counter({
    name: 'dlq_replayed_total',
    help: 'Dead letters a replay-dlq run resolved: replayed, superseded (the sink held a newer version) or requeued (failed again)',
    labelNames: ['sink', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly circuitState = new Gauge({
    name: 'circuit_state',
    help: 'Circuit breaker of a sink: 0 closed, 1 open (paused), 2 half-open',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  // Operations: what the alert rules and the dashboard in docker/ need beyond the above.
  // Measured by src/core/metrics/monitor.ts every 30 s in every `stream` process (any role),
  // so a slot or a backfill is watched even where capture itself is not running.
  readonly ready = new Gauge({
    name: 'streamctl_ready',
    help: '1 while this process is doing its job (/ready answers 200), else 0',
    registers: [this.registry],
  });
  readonly slotActive = new Gauge({
    name: 'streamctl_replication_slot_active',
    help: '1 when a session reads the replication slot, 0 when nobody does (or the slot is missing)',
    labelNames: ['slot'] as const,
    registers: [this.registry],
  });
  readonly slotRetainedWalBytes = new Gauge({
    name: 'streamctl_replication_slot_retained_wal_bytes',
    help: 'WAL PostgreSQL keeps for the slot: current WAL position minus its restart position',
    labelNames: ['slot'] as const,
    registers: [this.registry],
  });
  readonly slotConfirmedLsn = new Gauge({
    name: 'streamctl_replication_slot_confirmed_lsn',
    help: "The slot's confirmed flush position, as a number (it stands still when capture makes no progress)",
    labelNames: ['slot'] as const,
    registers: [this.registry],
  });
  readonly walLsn = new Gauge({
    name: 'streamctl_postgres_wal_lsn',
    help: "PostgreSQL's current WAL write position, as a number (it moves when anything is written)",
    registers: [this.registry],
  });
  readonly backfillRuns = new Gauge({
    name: 'streamctl_backfill_runs',
    help: 'Backfill runs of this pipeline by state: running, interrupted (not done, nobody holds its locks), done (last 24 h)',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  readonly backfillInterruptedAge = new Gauge({
    name: 'streamctl_backfill_interrupted_age_seconds',
    help: 'Seconds since the oldest interrupted backfill run committed its last chunk (0 when none is interrupted)',
    registers: [this.registry],
  });
  readonly circuitOpenedAt = new Gauge({
    name: 'circuit_opened_timestamp_seconds',
    help: 'Unix time at which the circuit of a sink left the closed state (0 while closed); open for time() - this',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'streamctl_' });
  }
}
