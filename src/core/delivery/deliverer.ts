import { restartSafeAdmins } from '../clients/restart-safe-admin.js';
import { kafkaClient, type Kafka, type OffsetsAdmin } from '../clients/rdkafka.js';
import { derivedNames } from '../config/names.js';
import type { BreakerPolicy, Config, RetryPolicy } from '../config/types.js';
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics.js';
import { ensureTopics } from '../kafka/topics.js';
import { secretOf } from '../secret-file.js';
import type { AnySinkPlugin } from '../sinks/plugin.js';
import { enabledSinks, SINK_PLUGINS, sinkConfigOf, sinkPlugin } from '../sinks/registry.js';
import { backoffDelays } from '../backoff.js';
import { sleepUnlessAborted } from '../timeout.js';
import { DlqWriter } from './dlq.js';
import { deliveryLag } from './lag.js';
import { makeEnricher } from './enrich.js';
import { breakerFor, retryPolicyFor } from './policies.js';
import { SinkRunner } from './runner.js';
import type { Sink, SinkName } from '../sinks/contract.js';
import type { SinkStateProblem } from './sink-state.js';
import { makeRowValidator } from './validate-rows.js';
import type { OpenLetters } from '../replay/open-letters.js';
import { sinkBackfill } from './rebuild-backfill.js';
import type { HistoryLost } from './replay-retained.js';
import { prepare } from './prepare.js';
import { DEFAULT_TRANSFORM_CACHE, SharedTransforms, transformCounter } from './transform-once.js';
import { outageFailure, portsOf, serverOf } from '../outages.js';

export { secretOf };

export interface ConfiguredSink {
  sink: Sink;
  retry: RetryPolicy;
  breaker: BreakerPolicy;
}

/** One sink as `stream` builds it, with its retry and breaker policies (replay-dlq builds the same). */
export async function configuredSink(config: Config, name: SinkName, logger: Logger, plugins: readonly AnySinkPlugin[] = SINK_PLUGINS): Promise<ConfiguredSink> {
  const plugin = sinkPlugin(name, plugins);
  const sinkConfig = sinkConfigOf(config, plugin);
  return { sink: await plugin.build(sinkConfig, { logger: logger.child(name), pipelineId: config.pipeline.id }), retry: sinkConfig.retry, breaker: sinkConfig.breaker };
}

/** Every enabled sink of the registry, built: what a deliverer runs. */
export function configuredSinks(config: Config, logger: Logger, plugins: readonly AnySinkPlugin[] = SINK_PLUGINS): Promise<ConfiguredSink[]> {
  return Promise.all(enabledSinks(config, plugins).map((p) => configuredSink(config, p.name as SinkName, logger, plugins)));
}

/** How often a stop that is taking long says what it still waits for. */
const STOP_REPORT_MS = 10_000;

/** Waits for every task; every `everyMs` until then, calls `report` with the name of each one still running. */
export async function settleReporting(tasks: ReadonlyArray<readonly [string, Promise<unknown>]>, everyMs: number, report: (name: string) => void): Promise<void> {
  const pending = new Set(tasks.map(([name]) => name));
  const timer = setInterval(() => pending.forEach(report), everyMs);
  try {
    await Promise.all(tasks.map(([name, task]) => task.finally(() => pending.delete(name))));
  } finally {
    clearInterval(timer);
  }
}

/** What the lag timer asks for the DLQ depth: letters not resolved by replay-dlq. */
export interface OpenLetterCount {
  count(admin: OffsetsAdmin): Promise<OpenLetters>;
}

/**
 * `stream --role deliver`: one runner per enabled sink, each with its own consumer group,
 * retry policy and breaker, all sharing one DLQ writer. A sink that cannot start (its
 * server is down) is retried in the background; the others go on.
 */
export class Deliverer {
  private readonly kafka: Kafka;
  private readonly runnerOf = new Map<string, SinkRunner>();
  private readonly dlq: DlqWriter;
  private admin: OffsetsAdmin | null = null;
  /** For the admin calls made over and over while delivering (lag, sink state, history): clients/restart-safe-admin.ts. */
  private readonly adminClients: { admin(): OffsetsAdmin };
  private lagTimer: NodeJS.Timeout | undefined;
  private readonly stopped = new AbortController();
  private readonly openLetters: OpenLetterCount;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly metrics: PipelineMetrics,
    /** Counts the DLQ's open letters (replay/open-letters.ts): given by the caller, since replay builds on delivery, not the other way. */
    openLetters: (kafka: Kafka) => OpenLetterCount,
  ) {
    this.kafka = kafkaClient(config.kafka, logger);
    this.adminClients = restartSafeAdmins(config.kafka, logger);
    this.dlq = new DlqWriter(this.kafka, derivedNames(config).dlqTopic);
    this.openLetters = openLetters(this.kafka);
  }

  /**
   * Whether a consumer's crash or a failed start is Kafka gone away (one line per outage,
   * outages.ts). Judged by the error's shape and the port it names, not by the bare words
   * "connection refused": a sink that cannot start (BigQuery cut) says the same.
   */
  private kafkaGone(err: unknown): boolean {
    return serverOf(err, { postgres: this.config.postgres.port, kafka: portsOf(this.config.kafka.brokers) }) === 'kafka';
  }

  private sinks(): Promise<ConfiguredSink[]> {
    return configuredSinks(this.config, this.logger);
  }

  async start(): Promise<void> {
    // Topic sizing needs DescribeConfigs/AlterConfigs, which only kafkajs offers (clients/kafka-configs.ts).
    const topicAdmin = this.kafka.admin();
    await topicAdmin.connect();
    try {
      await ensureTopics(topicAdmin, this.config);
    } finally {
      await topicAdmin.disconnect().catch(() => {});
    }
    // The periodic admin calls read committed offsets through a consumer (clients/restart-safe-admin.ts says why).
    this.admin = this.adminClients.admin();
    await this.admin.connect();
    await this.dlq.connect();
    const names = derivedNames(this.config);
    const enrich = makeEnricher(this.config.enrich, secretOf(this.config.enrich.maskKey, this.config.enrich.maskKeyFile), this.config.pipeline.id);
    const rowProblems = makeRowValidator(this.config.validation.tables);
    const sinks = await this.sinks();
    if (sinks.length === 0) throw new Error('every sink is disabled: nothing to deliver to');
    // One parse, validation and enrichment per record for all the sinks of this process.
    const transforms = new SharedTransforms((raw) => prepare(raw, rowProblems, enrich), sinks.length, DEFAULT_TRANSFORM_CACHE, transformCounter(this.metrics.registry));
    for (const { sink, retry, breaker } of sinks) {
      const runner = new SinkRunner({
        kafka: this.kafka, sink, dlq: this.dlq, enrich, rowProblems, retry: retryPolicyFor(retry), breaker: breakerFor(breaker), metrics: this.metrics, logger: this.logger.child(sink.name),
        topic: names.changesTopic,
        group: names.consumerGroup(sink.name),
        maxBatchEvents: this.config.delivery.maxBatchEvents,
        partitionsConsumedConcurrently: this.config.kafka.partitions,
        halfOpenAfterMs: breaker.halfOpenAfterMs,
        sessionTimeoutMs: this.config.delivery.sessionTimeoutMs,
        maxRecordBytes: this.config.kafka.maxRecordBytes,
        transforms,
        adminClients: this.adminClients,
        ...(sink.name === 'redis'
          ? {
              lostState: {
                policy: this.config.sinks.redis.rebuild,
                brokers: this.config.kafka.brokers.join(','),
                checkEveryMs: this.config.delivery.lagIntervalMs,
                // When the changes topic no longer holds everything: refill from PostgreSQL into Redis only.
                backfill: sinkBackfill(this.config, this.logger.child('rebuild'), 'redis'),
              },
            }
          : {}),
        onCrash: (error) => {
          if (this.stopped.signal.aborted) return;
          // Kafka gone away: one line per outage (outages.ts), not one per consumer restart.
          const fields = { sink: sink.name, error: error.message };
          if (!this.kafkaGone(error)) this.logger.warn('sink consumer crashed; restarting it', fields);
          else if (!outageFailure(this.logger, 'kafka', error, `sink ${sink.name}`)) this.logger.debug('sink consumer crashed; restarting it', fields);
          void runner.stop().then(() => this.startWithRetry(sink.name, runner));
        },
      });
      this.runnerOf.set(sink.name, runner);
      void this.startWithRetry(sink.name, runner);
    }
    this.lagTimer = setInterval(() => void this.measureLag(), this.config.delivery.lagIntervalMs);
  }

  private async startWithRetry(name: SinkName, runner: SinkRunner): Promise<void> {
    // A sink's server down at start: tried again at 0.5 s, 1 s, 2 s... up to every 30 s.
    const delays = backoffDelays({ initialDelayMs: 500, maxDelayMs: 30_000 });
    while (!this.stopped.signal.aborted) {
      try {
        await runner.start();
        this.logger.info('sink delivering', { sink: name });
        return;
      } catch (err) {
        const delay = delays();
        const message = (err as Error).message;
        if (!this.kafkaGone(err)) this.logger.warn('sink could not start; retrying', { sink: name, error: message, retry_in_ms: delay });
        else if (!outageFailure(this.logger, 'kafka', err, `sink ${name}`, { retry_in_ms: delay })) this.logger.debug('sink could not start; retrying', { sink: name, error: message, retry_in_ms: delay });
        await runner.stop().catch(() => {});
        await sleepUnlessAborted(delay, this.stopped.signal);
      }
    }
  }

  /** Sinks being rebuilt or refusing to go on after losing their state (/ready false, `status` exit 4). */
  sinkStateProblems(): SinkStateProblem[] {
    return [...this.runnerOf.values()].map((r) => r.stateProblem()).filter((p): p is SinkStateProblem => p !== null);
  }

  /** Sinks that lost stored history this process replayed from the topic, with what is gone for good. */
  historyLost(): HistoryLost[] {
    return [...this.runnerOf.values()].map((r) => r.historyLost()).filter((h): h is HistoryLost => h !== null);
  }

  /** Consumer lag per sink (queue_depth) and the DLQ's size, into the metrics. */
  async measureLag(): Promise<void> {
    if (!this.admin) return;
    try {
      const { lag, dlq_depth } = await deliveryLag(this.admin, this.config, (admin) => this.openLetters.count(admin));
      for (const [sink, n] of Object.entries(lag)) {
        this.metrics.queueDepth.set({ sink }, n);
        this.runnerOf.get(sink)?.lagged(n);
      }
      this.metrics.dlqDepth.set(dlq_depth);
    } catch (err) {
      this.logger.debug('lag measurement failed', { error: (err as Error).message });
    }
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    clearInterval(this.lagTimer);
    // A stop that takes long says, every STOP_REPORT_MS, which sinks it still waits for and where.
    await settleReporting(
      [...this.runnerOf].map(([name, r]) => [name, r.stop().catch(() => {})] as const),
      STOP_REPORT_MS,
      (name) => this.logger.warn(`still stopping sink ${name}`, { waiting_in: this.runnerOf.get(name)!.describe() }),
    );
    await this.dlq.disconnect();
    await this.admin?.disconnect().catch(() => {});
  }
}

