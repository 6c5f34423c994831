import { randomBytes } from 'node:crypto';
import type { ConsumedRecord } from '../clients/batch-consumer.js';
import { endOffsets, type Kafka, type Producer } from '../clients/rdkafka.js';
import { derivedNames } from '../config/names.js';
import type { Config } from '../config/types.js';
import { configuredSink, secretOf } from '../delivery/deliverer.js';
import { dlqHeaders, DlqWriter, type DeadLetter } from '../delivery/dlq.js';
import { makeEnricher, type Enricher } from '../delivery/enrich.js';
import { breakerFor, retryPolicyFor } from '../delivery/policies.js';
import { SinkRunner } from '../delivery/runner.js';
import type { Sink, SinkName } from '../sinks/contract.js';
import { makeRowValidator } from '../delivery/validate-rows.js';
import type { ChangeEvent } from '../event/envelope.js';
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics.js';
import { makeBigQuery } from '../clients/bigquery.js';
import { makeRedis } from '../clients/redis.js';
import { sleepUnlessAborted } from '../timeout.js';
import type { LetterFilter } from './filter.js';
import { letterKey, REPLAY_HEADERS, type Letter } from './letter.js';
import { encodeResolution, isOpen, resolutionTopic, type Outcome, type Resolution } from './resolutions.js';
import { loadResolutions, scanLetters } from './scan.js';
import { ensureResolutionTopic } from './topics.js';
import { bigQueryVersions, compareHeld, noVersions, redisVersions, type HeldVersions } from './versions.js';

export interface ExecuteOptions {
  filter: LetterFilter;
  /** Deliver to this sink instead of the one that dead-lettered each letter. */
  to?: SinkName;
  /** Letters that already failed this many times are left open and not replayed. */
  maxAttempts: number;
  /** Events per second, at most. */
  rate?: number;
  /** At most this many letters are replayed. */
  limit?: number;
  /** Letters per sink write (and per Kafka transaction of resolutions). */
  batchSize: number;
  signal?: AbortSignal;
  onProgress?: (p: ReplayProgress) => void;
}

/**
 * held_back: open letters skipped because they already failed --max-attempts times.
 * oversize: oversize markers left open: they carry no row, so a sink can only refuse them
 * again; a keyed backfill under a raised limit is the way out, after which they close as superseded.
 */
export interface ReplayProgress {
  /** DLQ records read so far, and how many the DLQ held when the run began. */
  read: number;
  total: number;
  counts: Record<Outcome | 'held_back' | 'oversize', number>;
}

export interface ReplaySummary {
  run: string;
  /** Every letter that matched was looked at (not interrupted, not stopped by an open circuit). */
  complete: boolean;
  interrupted: boolean;
  /** Set when a sink's circuit opened: the cause is not fixed; the rest stays open. */
  stoppedBy: string | null;
  counts: Record<Outcome | 'held_back' | 'oversize', number>;
  bySink: Record<string, Record<Outcome, number>>;
  duplicates: number;
  /** DLQ records read. */
  read: number;
  /** Distinct letters that matched the filters (any state), and how many of them were open. */
  matched: number;
  open: number;
}

/** One letter on its way: the letter, the message given to the pipeline, the parsed event. */
interface Item {
  letter: Letter;
  message: ConsumedRecord;
  event: ChangeEvent | null;
}

/** Keeps the letters the pipeline dead-letters instead of sending them: replay decides where they go. */
class CollectingDlq extends DlqWriter {
  letters: DeadLetter[] = [];
  override async connect(): Promise<void> {}
  override async write(letters: DeadLetter[]): Promise<void> {
    this.letters.push(...letters);
  }
  override async disconnect(): Promise<void> {}
}

export function newRunId(): string {
  return `replay-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/**
 * `replay-dlq --execute`: each open letter that matches goes back through the sink
 * pipeline of `stream` (validation, enrichment, retries, breaker, metrics: SinkRunner's
 * own code), and its outcome is recorded on `<prefix>.dlq-resolved` in one Kafka
 * transaction with the letters that failed again (back on the DLQ, attempts added).
 *
 * Exactly once in effect: a letter resolved is never delivered again (the resolutions are
 * read first). One delivered but not yet recorded when the process died is delivered
 * again by the next run, which every sink absorbs: Redis and BigQuery hold its version
 * already (found by the version probe: `replayed`, nothing written), HTTP sends the same
 * Idempotency-Key. The transactional id is fixed per pipeline, so a new run fences a
 * zombie one and aborts its open transaction before reading anything.
 */
export class ReplayRun {
  readonly run = newRunId();
  private producer: Producer | null = null;
  private readonly names;

  constructor(
    private readonly kafka: Kafka,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly metrics: PipelineMetrics,
  ) {
    this.names = derivedNames(config);
  }

  async execute(options: ExecuteOptions): Promise<ReplaySummary> {
    const admin = this.kafka.admin();
    await admin.connect();
    let total = 0;
    try {
      await ensureResolutionTopic(admin, this.config);
      if ((await admin.listTopics()).includes(this.names.dlqTopic)) {
        total = (await endOffsets(admin, this.names.dlqTopic)).reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
      }
    } finally {
      await admin.disconnect().catch(() => {});
    }
    this.producer = this.kafka.producer({
      'transaction.timeout.ms': this.config.kafka.transactionTimeoutMs,
      partitioner: 'murmur2_random',
      kafkaJS: { transactionalId: `streamctl-replay-${this.config.pipeline.id}`, idempotent: true, maxInFlightRequests: 1, acks: -1 },
    });
    // Fences an earlier run of this pipeline (SIGKILLed, or still going) and aborts its
    // open transaction, so the reads below see a settled DLQ.
    await this.producer.connect();
    const counts: ReplaySummary['counts'] = { replayed: 0, superseded: 0, requeued: 0, held_back: 0, oversize: 0 };
    const bySink: ReplaySummary['bySink'] = {};
    const pipelines = new Map<SinkName, Pipeline>();
    let read = 0;
    let matched = 0;
    let open = 0;
    let stoppedBy: string | null = null;
    let replayedSoFar = 0;
    let began: number | undefined;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const progress = () => options.onProgress?.({ read, total, counts: { ...counts } });
    try {
      const resolutions = await loadResolutions(this.kafka, this.config, stop.signal);
      const pipelineFor = async (name: SinkName): Promise<Pipeline> => {
        let p = pipelines.get(name);
        if (!p) {
          p = await this.openPipeline(name);
          pipelines.set(name, p);
        }
        return p;
      };

      const scan = await scanLetters(
        this.kafka,
        this.config,
        options.filter,
        resolutions,
        {
          read: (n) => {
            read += n;
          },
          letters: async (batch, heartbeat) => {
            // Grouped by target sink, in DLQ order, cut into writes of batchSize.
            const bySinkQueue = new Map<SinkName, Item[]>();
            for (const { letter, state } of batch) {
              matched++;
              if (!isOpen(state)) continue;
              open++;
              if (letter.attempts >= options.maxAttempts) {
                counts.held_back++;
                continue;
              }
              if (options.limit !== undefined && replayedSoFar >= options.limit) continue;
              replayedSoFar++;
              const target = options.to ?? letter.sink;
              const queue = bySinkQueue.get(target) ?? [];
              queue.push(itemOf(letter, queue.length));
              bySinkQueue.set(target, queue);
            }
            for (const [target, items] of bySinkQueue) {
              for (let from = 0; from < items.length; from += options.batchSize) {
                if (stop.signal.aborted || stoppedBy) return;
                const chunk = items.slice(from, from + options.batchSize).map((item, i) => ({ ...item, message: { ...item.message, offset: String(i) } }));
                if (options.rate) {
                  // From the first write, so the time spent reading up to it is not a credit to burst with.
                  began ??= Date.now();
                  const due = began + (1000 * (counts.replayed + counts.superseded + counts.requeued + chunk.length)) / options.rate;
                  await sleepUnlessAborted(due - Date.now(), stop.signal);
                  if (stop.signal.aborted) return;
                }
                const outcome = await this.replayChunk(await pipelineFor(target), target, chunk);
                if (outcome === 'circuit_open') {
                  stoppedBy = `the ${target} sink's circuit opened (it keeps failing): fix the cause, then run again`;
                  stop.abort();
                  return;
                }
                counts.oversize += outcome.oversize;
                for (const [key, r] of outcome.decided) {
                  resolutions.set(key, r);
                  counts[r.outcome]++;
                  const sinkCounts = (bySink[target] ??= { replayed: 0, superseded: 0, requeued: 0 });
                  sinkCounts[r.outcome]++;
                  this.metrics.dlqReplayed.inc({ sink: target, outcome: r.outcome });
                }
                progress();
                await heartbeat().catch(() => {});
              }
            }
            progress();
          },
        },
        stop.signal,
      );
      const interrupted = options.signal?.aborted === true;
      return { run: this.run, complete: scan.complete && !stoppedBy && !interrupted, interrupted, stoppedBy, counts, bySink, duplicates: scan.duplicates, read, matched, open };
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      for (const p of pipelines.values()) {
        await p.runner.stop().catch(() => {});
        await p.versions.close?.();
        if (p.markerVersions !== p.versions) await p.markerVersions.close?.();
      }
      await this.producer.disconnect().catch(() => {});
      this.producer = null;
    }
  }

  /** The pipeline of one sink, as `stream` builds it, writing to the collecting DLQ. */
  private async openPipeline(name: SinkName): Promise<Pipeline> {
    if (!this.config.sinks[name].enabled) throw new Error(`the ${name} sink is disabled in this configuration`);
    const { sink, retry, breaker } = await configuredSink(this.config, name, this.logger);
    const dlq = new CollectingDlq(this.kafka, this.names.dlqTopic);
    const enrich = makeEnricher(this.config.enrich, secretOf(this.config.enrich.maskKey, this.config.enrich.maskKeyFile), this.config.pipeline.id);
    const runner = new SinkRunner({
      kafka: this.kafka, sink, dlq, enrich, rowProblems: makeRowValidator(this.config.validation.tables), retry: retryPolicyFor(retry), breaker: breakerFor(breaker), metrics: this.metrics, logger: this.logger.child(name),
      topic: this.names.dlqTopic,
      // Only a sink that stores offsets uses it: a hash of its own, never stream's.
      group: `streamctl-${this.config.pipeline.id}-replay-${name}`,
      maxBatchEvents: this.config.delivery.maxBatchEvents,
      partitionsConsumedConcurrently: 1,
      halfOpenAfterMs: breaker.halfOpenAfterMs,
      sessionTimeoutMs: this.config.delivery.sessionTimeoutMs,
      onCrash: () => {},
    });
    await sink.start();
    const versions = this.versionsFor(name);
    return { runner, dlq, sink, enrich, versions, markerVersions: name === 'http' ? this.markerVersionsForHttp() : versions };
  }

  /**
   * Whether an HTTP oversize marker was superseded: HTTP keeps no versions, but it reads the
   * same changes topic as Redis and BigQuery, so a newer version of the row in either (the
   * keyed backfill of the recovery) is a newer event on its way to HTTP too.
   */
  private markerVersionsForHttp(): HeldVersions {
    if (this.config.sinks.redis.enabled) return this.versionsFor('redis');
    if (this.config.sinks.bigquery.enabled) return this.versionsFor('bigquery');
    return noVersions;
  }

  private versionsFor(name: SinkName): HeldVersions {
    if (name === 'redis') return redisVersions(makeRedis(this.config.sinks.redis, this.logger, { sink: true }), this.config.sinks.redis.keyPrefix);
    if (name === 'bigquery') {
      const b = this.config.sinks.bigquery;
      return bigQueryVersions(makeBigQuery(b), b.projectId, b.dataset, b.table);
    }
    return noVersions;
  }

  /**
   * One write's worth of letters for one sink: version probe, the pipeline, then one
   * transaction with a resolution per letter and the letters that failed again.
   */
  private async replayChunk(p: Pipeline, target: SinkName, items: Item[]): Promise<{ decided: Map<string, Resolution>; oversize: number } | 'circuit_open'> {
    const at = () => new Date().toISOString();
    const decided = new Map<string, Resolution>();
    const resolve = (item: Item, outcome: Outcome, detail: string) =>
      decided.set(letterKey(item.letter.sink, item.letter.eventId), { outcome, run: this.run, at: at(), attempts: item.letter.attempts, to: target, detail });

    // The sink keys rows by the enriched key (a masked key column is stored masked); an
    // event enrichment refuses is delivered, and the pipeline dead-letters it again.
    const probed: Array<{ item: Item; event: ChangeEvent }> = [];
    const markers: Array<{ item: Item; event: ChangeEvent }> = [];
    const toDeliver: Item[] = [];
    for (const item of items) {
      const event = enrichedOrNull(p.enrich, item.event);
      // An oversize marker is never delivered: the pipeline would only dead-letter it again.
      if (item.event?.op === 'oversize') markers.push({ item, event: event ?? item.event });
      else if (event) probed.push({ item, event });
      else toDeliver.push(item);
    }
    let oversize = 0;
    const markerHeld = await p.markerVersions.held(markers.map((m) => m.event));
    markers.forEach(({ item, event }, i) => {
      if (compareHeld(event, markerHeld[i] ?? null) === 'superseded') resolve(item, 'superseded', `the row was read again after the marker: version ${markerHeld[i]}`);
      else oversize++;
    });
    const held = await p.versions.held(probed.map((x) => x.event));
    probed.forEach(({ item, event }, i) => {
      const verdict = compareHeld(event, held[i] ?? null);
      if (verdict === 'superseded') resolve(item, 'superseded', `the sink holds version ${held[i]}`);
      else if (verdict === 'present') resolve(item, 'replayed', 'already in the sink');
      else toDeliver.push(item);
    });
    toDeliver.sort((a, b) => Number(a.message.offset) - Number(b.message.offset));

    const requeued: DeadLetter[] = [];
    if (toDeliver.length > 0) {
      p.dlq.letters = [];
      const messages = toDeliver.map((i, n) => ({ ...i.message, offset: String(n) }));
      const done = await p.runner.deliverRecords(this.names.dlqTopic, 0, messages);
      if (!done) return 'circuit_open';
      const failed = new Map(p.dlq.letters.map((l) => [Number(l.source.offset), l]));
      toDeliver.forEach((item, n) => {
        const again = failed.get(n);
        if (!again) {
          resolve(item, 'replayed', 'delivered');
          return;
        }
        const l = item.letter;
        requeued.push({
          ...l,
          sink: target,
          errorClass: again.errorClass,
          message: again.message,
          attempts: l.attempts + again.attempts,
          lastFailureAt: again.lastFailureAt,
        });
        resolve(item, 'requeued', `${again.errorClass}: ${again.message}`.slice(0, 300));
      });
    }

    if (decided.size === 0 && requeued.length === 0) return { decided, oversize };
    const tx = await this.producer!.transaction();
    try {
      if (requeued.length > 0) {
        await tx.send({
          topic: this.names.dlqTopic,
          messages: requeued.map((d) => ({ key: d.key, value: d.value, headers: { ...dlqHeaders(d), [REPLAY_HEADERS.run]: this.run, [REPLAY_HEADERS.replayedAt]: at() } })),
        });
      }
      await tx.send({
        topic: resolutionTopic(this.names.dlqTopic),
        messages: [...decided].map(([key, r]) => ({ key, value: encodeResolution(r) })),
      });
      await tx.commit();
    } catch (err) {
      await tx.abort().catch(() => {});
      throw err;
    }
    return { decided, oversize };
  }
}

interface Pipeline {
  runner: SinkRunner;
  dlq: CollectingDlq;
  sink: Sink;
  enrich: Enricher;
  versions: HeldVersions;
  /** Where an oversize marker's row version is looked up (for HTTP, another sink's). */
  markerVersions: HeldVersions;
}

function itemOf(letter: Letter, index: number): Item {
  let event: ChangeEvent | null = null;
  try {
    const v = JSON.parse(letter.value) as ChangeEvent;
    if (v && typeof v === 'object' && typeof v.schema === 'string' && typeof v.table === 'string' && typeof v.op === 'string') event = v;
  } catch {
    event = null;
  }
  const message = { key: Buffer.from(letter.key), value: Buffer.from(letter.value), offset: String(index), timestamp: String(Date.now()), headers: {} } satisfies ConsumedRecord;
  return { letter, message, event };
}

function enrichedOrNull(enrich: Enricher, event: ChangeEvent | null): ChangeEvent | null {
  if (event === null) return null;
  try {
    return enrich(event);
  } catch {
    return null;
  }
}
