import { readFileSync } from 'node:fs';
import type { Admin, Kafka } from 'kafkajs';
import { isBrokerUnreachable, makeKafka } from '../clients/kafka.js';
import { derivedNames } from '../config/names.js';
import type { BreakerPolicy, Config, RetryPolicy } from '../config/types.js';
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics.js';
import { ensureTopics } from '../kafka/topics.js';
import { BigQuerySink } from '../sinks/bigquery.js';
import { HttpSink } from '../sinks/http.js';
import { RedisSink } from '../sinks/redis.js';
import { sleep } from '../timeout.js';
import { DlqWriter } from './dlq.js';
import { deliveryLag } from './lag.js';
import { makeEnricher } from './enrich.js';
import { breakerFor, retryPolicyFor } from './policies.js';
import { SinkRunner } from './runner.js';
import type { Sink, SinkName } from './sink.js';
import type { SinkStateProblem } from './sink-state.js';
import { makeRowValidator } from './validate-rows.js';
import { OpenLetterCounter } from '../replay/open-letters.js';
import { outageFailure } from '../outages.js';

/** Reads a secret from the config or its file; the caller adds it to the redactor. */
export function secretOf(inline: string, file: string): string {
  return inline || (file ? readFileSync(file, 'utf8').trim() : '');
}

/** The secrets delivery reads from files, so the command can redact them from all output. */
export function deliverySecrets(config: Config): string[] {
  const out: string[] = [];
  for (const [inline, file] of [
    [config.sinks.http.hmacKey, config.sinks.http.hmacKeyFile],
    [config.enrich.maskKey, config.enrich.maskKeyFile],
  ] as const) {
    try {
      const s = secretOf(inline, file);
      if (s) out.push(s);
    } catch {
      // reported when the sink starts
    }
  }
  return out;
}

export interface ConfiguredSink {
  sink: Sink;
  retry: RetryPolicy;
  breaker: BreakerPolicy;
}

/** One sink as `stream` builds it, with its retry and breaker policies (replay-dlq builds the same). */
export function configuredSink(config: Config, name: SinkName, logger: Logger): ConfiguredSink {
  const s = config.sinks;
  if (name === 'redis') return { sink: new RedisSink(s.redis, logger.child('redis')), retry: s.redis.retry, breaker: s.redis.breaker };
  if (name === 'bigquery') return { sink: new BigQuerySink(s.bigquery, logger.child('bigquery'), config.pipeline.id), retry: s.bigquery.retry, breaker: s.bigquery.breaker };
  return { sink: new HttpSink(s.http, secretOf(s.http.hmacKey, s.http.hmacKeyFile), logger.child('http')), retry: s.http.retry, breaker: s.http.breaker };
}

/**
 * `stream --role deliver`: one runner per enabled sink, each with its own consumer group,
 * retry policy and breaker, all sharing one DLQ writer. A sink that cannot start (its
 * server is down) is retried in the background; the others go on.
 */
export class Deliverer {
  private readonly kafka: Kafka;
  private readonly runners: SinkRunner[] = [];
  private readonly dlq: DlqWriter;
  private admin: Admin | null = null;
  private lagTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly started = new Set<SinkName>();
  private readonly openLetters: OpenLetterCounter;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly metrics: PipelineMetrics,
  ) {
    this.kafka = makeKafka(config.kafka, logger);
    this.dlq = new DlqWriter(this.kafka, derivedNames(config).dlqTopic);
    this.openLetters = new OpenLetterCounter(this.kafka, config);
  }

  get running(): SinkName[] {
    return [...this.started];
  }

  private sinks(): ConfiguredSink[] {
    return (['redis', 'bigquery', 'http'] as const).filter((name) => this.config.sinks[name].enabled).map((name) => configuredSink(this.config, name, this.logger));
  }

  async start(): Promise<void> {
    this.admin = this.kafka.admin();
    await this.admin.connect();
    await ensureTopics(this.admin, this.config);
    await this.dlq.connect();
    const names = derivedNames(this.config);
    const enrich = makeEnricher(this.config.enrich, secretOf(this.config.enrich.maskKey, this.config.enrich.maskKeyFile), this.config.pipeline.id);
    const rowProblems = makeRowValidator(this.config.validation.tables);
    const sinks = this.sinks();
    if (sinks.length === 0) throw new Error('every sink is disabled: nothing to deliver to');
    for (const { sink, retry, breaker } of sinks) {
      const runner = new SinkRunner(
        this.kafka,
        sink,
        this.dlq,
        enrich,
        rowProblems,
        retryPolicyFor(retry),
        breakerFor(breaker),
        this.metrics,
        this.logger.child(sink.name),
        {
          topic: names.changesTopic,
          group: names.consumerGroup(sink.name),
          maxBatchEvents: this.config.delivery.maxBatchEvents,
          partitionsConsumedConcurrently: this.config.kafka.partitions,
          halfOpenAfterMs: breaker.halfOpenAfterMs,
          sessionTimeoutMs: this.config.delivery.sessionTimeoutMs,
          maxRecordBytes: this.config.kafka.maxRecordBytes,
          ...(sink.name === 'redis'
            ? { lostState: { policy: this.config.sinks.redis.rebuild, brokers: this.config.kafka.brokers.join(','), checkEveryMs: this.config.delivery.lagIntervalMs } }
            : {}),
          onCrash: (error) => {
            if (this.stopping) return;
            // Kafka gone away: one line per outage (outages.ts), not one per consumer restart.
            const fields = { sink: sink.name, error: error.message };
            if (!isBrokerUnreachable(error.message, {})) this.logger.warn('sink consumer crashed; restarting it', fields);
            else if (!outageFailure(this.logger, 'kafka', error, `sink ${sink.name}`)) this.logger.debug('sink consumer crashed; restarting it', fields);
            this.started.delete(sink.name);
            void runner.stop().then(() => this.startWithRetry(sink.name, runner));
          },
        },
      );
      this.runners.push(runner);
      void this.startWithRetry(sink.name, runner);
    }
    this.lagTimer = setInterval(() => void this.measureLag(), this.config.delivery.lagIntervalMs);
  }

  private async startWithRetry(name: SinkName, runner: SinkRunner): Promise<void> {
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await runner.start();
        this.started.add(name);
        this.logger.info('sink delivering', { sink: name });
        return;
      } catch (err) {
        const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 6));
        const message = (err as Error).message;
        if (!isBrokerUnreachable(message, {})) this.logger.warn('sink could not start; retrying', { sink: name, error: message, retry_in_ms: delay });
        else if (!outageFailure(this.logger, 'kafka', err, `sink ${name}`, { retry_in_ms: delay })) this.logger.debug('sink could not start; retrying', { sink: name, error: message, retry_in_ms: delay });
        await runner.stop().catch(() => {});
        for (let waited = 0; waited < delay && !this.stopping; waited += 100) await sleep(100);
      }
    }
  }

  /** Sinks being rebuilt or refusing to go on after losing their state (/ready false, `status` exit 4). */
  sinkStateProblems(): SinkStateProblem[] {
    return this.runners.map((r) => r.stateProblem()).filter((p): p is SinkStateProblem => p !== null);
  }

  /** Consumer lag per sink (queue_depth) and the DLQ's size, into the metrics. */
  async measureLag(): Promise<void> {
    if (!this.admin) return;
    try {
      const { lag, dlq_depth } = await deliveryLag(this.admin, this.config, (admin) => this.openLetters.count(admin));
      for (const [sink, n] of Object.entries(lag)) this.metrics.queueDepth.set({ sink }, n);
      this.metrics.dlqDepth.set(dlq_depth);
    } catch (err) {
      this.logger.debug('lag measurement failed', { error: (err as Error).message });
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.lagTimer);
    await Promise.all(this.runners.map((r) => r.stop().catch(() => {})));
    await this.dlq.disconnect();
    await this.admin?.disconnect().catch(() => {});
  }
}

