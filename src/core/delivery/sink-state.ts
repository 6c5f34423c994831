import { randomBytes } from 'node:crypto';
import { describeTopicConfigs } from '../clients/kafka-configs.js';
import { endOffsets, type OffsetsAdmin } from '../clients/rdkafka.js';
import type { Logger } from '../logger.js';
import type { Sink, SinkName } from '../sinks/contract.js';
import { LazyAdmin } from './lazy-admin.js';
import type { SinkBackfill } from './rebuild-backfill.js';

/**
 * A sink that keeps its own offsets (Redis) can come back empty: restarted without
 * persistence, flushed. Its offsets are then gone too, and the consumer used to carry on
 * from the group's committed offsets, so the read model silently lost every row written
 * before. Here each partition carries a generation marker in the sink, written by the
 * deliverer (never by the write itself), and each write must match it (sinks/redis/script.ts).
 * On assignment and periodically, per partition:
 *   marker present                         -> intact: resume from the sink's offsets;
 *   no marker, the sink's offsets present  -> written before markers existed: adopt;
 *   neither, and the group never committed -> a new sink: mark it, start from the beginning;
 *   neither, but the group has committed   -> LOST: the sink was emptied behind our back.
 * A lost partition is rebuilt from the changes topic when that topic still holds every
 * event the pipeline wrote (`auto`), or refused (paused, /ready false) with what to run.
 */
export type PartitionVerdict = 'intact' | 'adopt' | 'fresh' | 'lost';

export function verdictFor(p: { marker?: string; stored?: string; committed?: string }): PartitionVerdict {
  if (p.marker !== undefined) return 'intact';
  if (p.stored !== undefined) return 'adopt';
  // '-1' (or nothing) means no committed offset; any commit is past at least one record.
  if (p.committed !== undefined && BigInt(p.committed) > 0n) return 'lost';
  return 'fresh';
}

/** Whether the changes topic still holds every event ever written to it, and if not why. */
export interface TopicCompleteness {
  complete: boolean;
  why: string;
}

/**
 * Nothing was ever removed from the topic when every partition's earliest offset is still 0
 * (retention has deleted no segment) and it is not compacted (compaction drops older
 * records of a key, and a rebuild by replay needs them all, deletes included).
 */
export function completeness(earliest: Array<{ partition: number; low: string }>, cleanupPolicy: string | undefined, retentionMs: string | undefined): TopicCompleteness {
  const trimmed = earliest.filter((p) => p.low !== '0');
  if (trimmed.length > 0) {
    const list = trimmed.map((p) => `partition ${p.partition} starts at offset ${p.low}`).join(', ');
    return { complete: false, why: `retention (retention.ms ${retentionMs ?? '?'}) has deleted the oldest events: ${list}` };
  }
  if ((cleanupPolicy ?? 'delete').includes('compact')) return { complete: false, why: `the topic is compacted (cleanup.policy ${cleanupPolicy}): older events of a row may be gone` };
  return { complete: true, why: `every partition still starts at offset 0 (retention.ms ${retentionMs ?? '?'}, cleanup.policy ${cleanupPolicy ?? 'delete'})` };
}

/** What /ready and `status` show for a sink that is being rebuilt or refuses to go on. */
export interface SinkStateProblem {
  sink: SinkName;
  state: 'rebuilding' | 'refused';
  problem: string;
  fix: string;
  done?: number;
  total?: number;
}

export interface SinkStateOptions {
  topic: string;
  group: string;
  policy: 'auto' | 'manual';
  brokers: string;
  /** Refills the sink from PostgreSQL when the topic cannot (./rebuild-backfill.ts); absent: refuse instead. */
  backfill?: SinkBackfill;
}

/** A rebuild by backfill was started under this marker and has not finished (a restart runs it again). */
const BACKFILL_PENDING = ' backfill-pending ';
const BACKFILLED = ' backfilled ';

/** The offset a rebuild marker says the rebuild must reach; undefined for other markers. */
export function rebuildTarget(marker: string): bigint | undefined {
  const until = / rebuild \S+ until (\d+)$/.exec(marker)?.[1];
  return until === undefined ? undefined : BigInt(until);
}

/** Marks that match nothing the sink holds: the write is refused (a partition not checked yet, or refused). */
export const UNCHECKED = 'unchecked';

/** What the keeper does to the consumer: seek a partition, pause partitions. */
export interface PartitionControl {
  seek(partition: number, offset: string): void;
  pause(partitions: number[]): void;
}
const REFUSED = 'refused';

export class SinkStateKeeper {
  private readonly admin: LazyAdmin;
  private readonly generations = new Map<number, string>();
  /** Partitions being rebuilt: the offset (high watermark at the start) they must reach. */
  private readonly rebuilding = new Map<number, bigint>();
  private readonly refused = new Map<number, { problem: string; fix: string }>();
  /** Where each partition being rebuilt has got to. */
  private readonly positions = new Map<number, bigint>();
  /** Events of the partitions already rebuilt, while others still are (so N of M never shrinks). */
  private rebuilt = 0n;
  private chain: Promise<void> = Promise.resolve();
  /** A rebuild by backfill in this process: rows so far, and why the topic could not do it. */
  private backfilling: { done: number; total: number; why: string; failure?: string } | null = null;
  private backfillRun: Promise<void> | null = null;
  private readonly stopBackfill = new AbortController();

  constructor(
    adminClients: { admin(): OffsetsAdmin },
    private readonly sink: Sink,
    private readonly logger: Logger,
    private readonly options: SinkStateOptions,
  ) {
    this.admin = new LazyAdmin(adminClients);
  }

  /** The marker a write to `partition` must carry; UNCHECKED until a check ran. */
  generation(partition: number): string {
    return this.generations.get(partition) ?? UNCHECKED;
  }

  known(partition: number): boolean {
    return this.generations.has(partition);
  }

  /** Forget what was checked: the next batch (or tick) checks again. */
  forget(partitions?: number[]): void {
    for (const p of partitions ?? [...this.generations.keys()]) this.generations.delete(p);
  }

  problem(): SinkStateProblem | null {
    if (this.refused.size > 0) {
      const [first] = this.refused.values();
      return { sink: this.sink.name, state: 'refused', problem: first!.problem, fix: first!.fix };
    }
    if (this.backfilling) {
      const { done, total, why, failure } = this.backfilling;
      const tables = 'streamctl backfill --sink ' + this.sink.name + ' --table <each table of postgres.tables>';
      return {
        sink: this.sink.name,
        state: 'rebuilding',
        problem: `rebuilding ${this.sink.name}: ${done} of ${total} rows backfilled from PostgreSQL (the changes topic cannot rebuild it: ${why})${failure ? `; the last attempt failed: ${failure}, trying again` : ''}`,
        fix: failure ? `fix the cause, or run ${tables} by hand` : 'wait: it comes back on its own (sinks.redis.rebuild auto); /ready is false until then',
        done,
        total,
      };
    }
    if (this.rebuilding.size === 0) return null;
    const total = [...this.rebuilding.values()].reduce((a, b) => a + b, 0n) + this.rebuilt;
    const done = [...this.positions.values()].reduce((a, b) => a + b, 0n) + this.rebuilt;
    return {
      sink: this.sink.name,
      state: 'rebuilding',
      problem: `rebuilding ${this.sink.name}: ${done} of ${total} records of the changes topic replayed`,
      fix: 'wait: it comes back on its own (sinks.redis.rebuild auto); /ready is false until then',
      done: Number(done),
      total: Number(total),
    };
  }

  /** Checks `partitions` one check at a time (the tick and a batch may ask together). */
  check(partitions: number[], consumer: PartitionControl): Promise<void> {
    const run = this.chain.then(() => this.checkNow(partitions, consumer));
    this.chain = run.catch(() => {});
    return run;
  }

  private adminClient(): Promise<OffsetsAdmin> {
    return this.admin.get();
  }

  private async checkNow(partitions: number[], consumer: PartitionControl): Promise<void> {
    const { topic, group } = this.options;
    const tp = (p: number) => `${topic}:${p}`;
    const [markers, stored] = await Promise.all([this.sink.stateMarkers!(group), this.sink.storedOffsets!(group)]);
    const admin = await this.adminClient();
    const committed = new Map<number, string>();
    for (const t of await admin.fetchOffsets({ groupId: group, topics: [topic] })) {
      for (const p of t.partitions) committed.set(p.partition, p.offset);
    }
    // A refused partition stays refused (paused) until the operator acts and restarts.
    partitions = partitions.filter((p) => this.generations.get(p) !== REFUSED);
    if (partitions.length === 0) return;
    const mint: Record<string, string> = {};
    const lost: number[] = [];
    for (const p of partitions) {
      const verdict = verdictFor({ marker: markers[tp(p)], stored: stored[tp(p)], committed: committed.get(p) });
      if (verdict === 'intact') {
        // The sink's own offsets were written with its data; Kafka's committed ones may be a batch behind.
        const marker = markers[tp(p)]!;
        // A rebuild that wrote nothing yet starts again at 0: the group's committed offset is still the one from before the loss.
        const from = stored[tp(p)] ?? (rebuildTarget(marker) !== undefined ? '0' : undefined);
        if (this.generations.get(p) !== marker && from !== undefined) consumer.seek(p, from);
        if (this.generations.get(p) !== marker) this.resumeRebuild(p, marker, stored[tp(p)]);
        this.generations.set(p, marker);
        // A rebuild by backfill that a stop or a kill cut short: run it again (a backfill is idempotent).
        if (marker.includes(BACKFILL_PENDING) && !this.backfillRun && this.options.backfill) {
          this.logger.warn(`${this.sink.name} partition ${p}: a rebuild by backfill did not finish; running it again`);
          this.startBackfill('a rebuild by backfill was interrupted');
        }
      } else if (verdict === 'lost') {
        lost.push(p);
      } else {
        mint[tp(p)] = `${new Date().toISOString()} ${verdict} ${randomBytes(4).toString('hex')}`;
      }
    }
    if (lost.length > 0) {
      this.logger.error(`${this.sink.name} lost its state: no generation marker and no offsets, but the group has delivered before (it was flushed or restarted empty)`, {
        partitions: lost.join(','),
        policy: this.options.policy,
      });
      const topicState = await this.topicCompleteness(admin);
      if (this.options.policy === 'auto' && topicState.complete) {
        const ends = await endOffsets(admin, topic);
        for (const p of lost) {
          const target = BigInt(ends.find((e) => e.partition === p)?.high ?? '0');
          // The target goes in the marker, so a deliverer killed during the rebuild still reports it after a restart.
          mint[tp(p)] = `${new Date().toISOString()} rebuild ${randomBytes(4).toString('hex')} until ${target}`;
          if (target > 0n) {
            this.rebuilding.set(p, target);
            this.positions.set(p, 0n);
          }
          this.refused.delete(p);
        }
        this.logger.warn(`rebuilding ${this.sink.name} from the changes topic: ${topicState.why}`, { partitions: lost.join(',') });
      } else if (this.options.policy === 'auto' && this.options.backfill) {
        // A new generation at once: the live changes go on from the group's offsets while the
        // backfill refills what came before (its reads sort below any newer change per key).
        for (const p of lost) {
          mint[tp(p)] = `${new Date().toISOString()}${BACKFILL_PENDING}${randomBytes(4).toString('hex')}`;
          this.refused.delete(p);
        }
        this.logger.warn(`rebuilding ${this.sink.name} by a backfill of the pipeline's tables into it only: the changes topic cannot rebuild it (${topicState.why})`, { partitions: lost.join(',') });
        this.startBackfill(topicState.why);
      } else {
        const groupCmd = `kafka-consumer-groups.sh --bootstrap-server ${this.options.brokers} --delete --group ${group}`;
        const refusal =
          this.options.policy === 'manual'
            ? {
                problem: `${this.sink.name} lost its state (partitions ${lost.join(',')}) and sinks.redis.rebuild is manual: not delivering`,
                fix: topicState.complete
                  ? `the changes topic holds every event (${topicState.why}): set sinks.redis.rebuild to auto and restart stream to rebuild from it`
                  : `rebuild needs a backfill (${topicState.why}): set sinks.redis.rebuild to auto and restart stream (it backfills Redis alone), or stop stream, ${groupCmd}, start stream, then run streamctl backfill --sink ${this.sink.name} --table <each table>`,
              }
            : {
                problem: `${this.sink.name} lost its state (partitions ${lost.join(',')}) and the changes topic cannot rebuild it: ${topicState.why}`,
                fix: `rebuild needs a backfill: stop stream, ${groupCmd}, start stream, then run streamctl backfill --sink ${this.sink.name} --table <each table>`,
              };
        for (const p of lost) {
          this.generations.set(p, REFUSED);
          this.refused.set(p, refusal);
        }
        consumer.pause(lost);
        this.logger.error(refusal.problem, { fix: refusal.fix });
      }
    }
    if (Object.keys(mint).length > 0) await this.sink.markState!(group, mint);
    for (const [key, generation] of Object.entries(mint)) {
      const p = Number(key.slice(topic.length + 1));
      this.generations.set(p, generation);
      // A rebuild reads the partition again from its first event; fresh and adopted ones go on from where they are.
      if (this.rebuilding.has(p)) consumer.seek(p, '0');
      else if (stored[key] !== undefined) consumer.seek(p, stored[key]!);
    }
  }

  /** Runs the rebuild by backfill once in this process, again after a failure, until it ends or stop() is called. */
  private startBackfill(why: string): void {
    if (this.backfillRun || !this.options.backfill) return;
    this.backfilling = { done: 0, total: 0, why };
    const run = this.options.backfill;
    this.backfillRun = (async () => {
      for (let attempt = 1; !this.stopBackfill.signal.aborted; attempt++) {
        try {
          const rows = await run((done, total) => {
            if (this.backfilling) Object.assign(this.backfilling, { done, total });
          }, this.stopBackfill.signal);
          await this.backfillDone(rows);
          return;
        } catch (err) {
          if (this.stopBackfill.signal.aborted) return;
          const failure = (err as Error).message;
          if (this.backfilling) this.backfilling.failure = failure;
          const delay = Math.min(30_000, 1000 * 2 ** Math.min(attempt - 1, 5));
          this.logger.error(`rebuilding ${this.sink.name} by backfill failed; trying again`, { error: failure, retry_in_ms: delay });
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    })().finally(() => (this.backfillRun = null));
  }

  /**
   * The backfill is in the topic: new markers say so (a restart does not run it again), and
   * the sink stays "rebuilding" until it has read each partition to where the topic ended.
   */
  private async backfillDone(rows: number): Promise<void> {
    await this.chain; // no check in flight over the markers
    const { topic, group } = this.options;
    const markers = await this.sink.stateMarkers!(group);
    const mint: Record<string, string> = {};
    for (const [key, marker] of Object.entries(markers)) {
      if (key.startsWith(`${topic}:`) && marker.includes(BACKFILL_PENDING)) mint[key] = `${new Date().toISOString()}${BACKFILLED}${randomBytes(4).toString('hex')}`;
    }
    if (Object.keys(mint).length > 0) await this.sink.markState!(group, mint);
    const admin = await this.adminClient();
    const ends = await endOffsets(admin, topic);
    const committed = new Map<number, bigint>();
    for (const t of await admin.fetchOffsets({ groupId: group, topics: [topic] })) {
      for (const p of t.partitions) committed.set(p.partition, BigInt(p.offset));
    }
    for (const [key, generation] of Object.entries(mint)) {
      const p = Number(key.slice(topic.length + 1));
      this.generations.set(p, generation);
      const target = BigInt(ends.find((e) => e.partition === p)?.high ?? '0');
      // A partition the sink has already read to the end has nothing left to wait for (and no batch would say so).
      const at = committed.get(p) ?? 0n;
      if (at < target && !this.rebuilding.has(p)) {
        this.rebuilding.set(p, target);
        this.positions.set(p, at > 0n ? at : 0n);
      }
    }
    this.backfilling = null;
    this.logger.info(`${this.sink.name} backfilled from PostgreSQL; delivering it`, { rows: String(rows) });
  }

  /** This member's partitions now: a rebuild or a refusal of a partition it gave away is the new owner's to report. */
  assign(partitions: number[]): void {
    const mine = new Set(partitions);
    for (const p of [...this.rebuilding.keys()]) if (!mine.has(p)) (this.rebuilding.delete(p), this.positions.delete(p));
    for (const p of [...this.refused.keys()]) if (!mine.has(p)) this.refused.delete(p);
    this.forget();
  }

  /** A partition whose marker says a rebuild to `until T` began, not yet past T (a restart, a new owner): still rebuilding. */
  private resumeRebuild(partition: number, marker: string, stored: string | undefined): void {
    const target = rebuildTarget(marker);
    if (target === undefined || this.rebuilding.has(partition)) return;
    // Only the sink's own offsets count: the group's may still be the ones from before the loss.
    const at = BigInt(stored ?? '0');
    if (at >= target) return;
    this.rebuilding.set(partition, target);
    this.positions.set(partition, at);
    this.logger.warn(`${this.sink.name} partition ${partition} is still being rebuilt`, { at: at.toString(), until: target.toString() });
  }

  /**
   * The runner committed `partition` up to `next` (its events, or the transaction markers
   * that end the log): a partition being rebuilt is done once it reaches its target.
   */
  moved(partition: number, next: string): void {
    const target = this.rebuilding.get(partition);
    if (target === undefined) return;
    const at = BigInt(next);
    if (at < target) {
      this.positions.set(partition, at);
      return;
    }
    this.rebuilding.delete(partition);
    this.positions.delete(partition);
    this.rebuilt += target;
    this.logger.info(`${this.sink.name} partition ${partition} rebuilt`, { events: target.toString() });
    if (this.rebuilding.size === 0) {
      this.logger.info(`${this.sink.name} rebuilt from the changes topic`, { events: this.rebuilt.toString() });
      this.rebuilt = 0n;
    }
  }

  private async topicCompleteness(admin: OffsetsAdmin): Promise<TopicCompleteness> {
    const { topic } = this.options;
    const earliest = await endOffsets(admin, topic);
    // Retention shows in the low watermarks; compaction does not (it leaves offset 0 in
    // place), so its setting is read, through kafkajs (clients/kafka-configs.ts says why).
    const entries = (await describeTopicConfigs({ brokers: this.options.brokers.split(','), clientId: 'streamctl' }, [topic])).get(topic) ?? [];
    const value = (name: string) => entries.find((e) => e.name === name)?.value;
    return completeness(earliest, value('cleanup.policy'), value('retention.ms'));
  }

  async stop(): Promise<void> {
    this.stopBackfill.abort();
    await this.backfillRun;
    await this.admin.stop();
  }
}
