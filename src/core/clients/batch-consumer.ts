import rdkafka from '@confluentinc/kafka-javascript';
import type { Assignment, LibrdKafkaError, Message, TopicPartitionOffset } from '@confluentinc/kafka-javascript';
import type { Logger } from '../logger.js';
import { forwardLogs, isKafkaChurn } from './librdkafka.js';
import { sleep } from '../timeout.js';
import { CommitBatcher } from './commit-batcher.js';

/** A record as the engine reads it (kafkajs's shape: offsets as decimal strings, Buffers). */
export interface ConsumedRecord {
  key: Buffer | null;
  value: Buffer | null;
  offset: string;
  timestamp: string;
  headers: Record<string, Buffer | string | undefined>;
}

export interface BatchContext {
  /** False once the consumer is stopping. */
  isRunning(): boolean;
  /** True once the partition was sought elsewhere, revoked or reassigned: stop, commit nothing more. */
  isStale(): boolean;
  /** When this round's records reached JavaScript (ms since the epoch): the end of their time in Kafka. */
  receivedAt: number;
}

export interface BatchConsumerOptions {
  /** librdkafka settings shared by the pipeline's clients (rdkafka.ts `librdkafkaSettings`). */
  settings: Record<string, string | number | boolean>;
  topic: string;
  /**
   * `group`: join this consumer group (subscribe); the group's committed offsets are where
   * reading starts unless `onAssign` says otherwise. `assign`: read every partition from
   * `from` (no group is joined, nothing is committed).
   */
  mode: { group: string; sessionTimeoutMs: number } | { assign: Array<{ partition: number; offset: string }> };
  /** Records handed over per round at most (all partitions together). */
  maxRecordsPerRound: number;
  /** Bytes one fetch may return per partition, and in all. */
  maxPartitionFetchBytes: number;
  maxFetchBytes: number;
  /** Partitions worked on at once in a round. */
  concurrency: number;
  logger: Logger;
  /** One partition's records of this round, in offset order. Throwing seeks the partition back to its first record not committed. */
  eachBatch: (partition: number, messages: ConsumedRecord[], context: BatchContext) => Promise<void>;
  /**
   * Partitions assigned to this member (group mode); may return where to start each one
   * (a sink that stores its own offsets), applied with the assignment itself, so no
   * record is read from the group's older offsets first.
   */
  onAssign?: (partitions: number[]) => Promise<Record<number, string>>;
  /**
   * A partition that got no record this round, with its position: past the last record
   * handed over and past any transaction markers or aborted records after it (librdkafka
   * moves the position over those; they never reach eachBatch).
   */
  onIdle?: (partition: number, position: string) => Promise<void> | void;
  /** The consumer cannot go on (a fatal librdkafka error). */
  onFatal?: (error: Error) => void;
}

type NativeConsumer = InstanceType<typeof rdkafka.KafkaConsumer> & {
  setDefaultIsTimeoutOnlyForFirstMessage(only: boolean): void;
  commitCb(toppars: TopicPartitionOffset[] | null, cb: (err: LibrdKafkaError | null) => void): void;
};

/**
 * The native librdkafka consumer (manual commits, read_committed) behind a small
 * eachBatch loop: read a round of records, hand each partition's records to `eachBatch`
 * (partitions at once, up to `concurrency`), wait, read the next round. No round is read
 * while one is in hand, so a rebalance (served inside the read) never lands in the middle
 * of a batch; heartbeats run on librdkafka's own thread.
 */
export class BatchConsumer {
  private consumer: NativeConsumer | null = null;
  /** The connected consumer's offset commits, gathered per loop turn. */
  private commits: CommitBatcher | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  /** Bumped by a seek, an assignment or a revocation: a batch started under an older one is stale. */
  private readonly generations = new Map<number, number>();
  private readonly assigned = new Set<number>();
  private readonly paused = new Set<number>();
  private readonly committed = new Map<number, bigint>();
  /** Seeks run one after another: two at once may be applied in either order by librdkafka's workers. */
  private seeks: Promise<void> = Promise.resolve();
  /** The offset each partition was last sought to (until the next assignment). */
  private readonly seekTargets = new Map<number, string>();
  /** Seeks that failed: the partition is read from nowhere else until one succeeds (seekUntilApplied). */
  private readonly unsettledSeeks = new Map<number, string>();
  /** What the read loop is doing and since when (for a stop or a stall that must say where it waits). */
  private current: { doing: string; since: number } = { doing: 'not started', since: Date.now() };

  constructor(private readonly options: BatchConsumerOptions) {}

  async start(): Promise<void> {
    const o = this.options;
    const group = 'group' in o.mode ? o.mode : null;
    const settings: Record<string, unknown> = {
      ...o.settings,
      'group.id': group?.group ?? `streamctl-reader-${process.pid}`,
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
      // Exactly-once: never hand over records of open or aborted transactions.
      'isolation.level': 'read_committed',
      'max.partition.fetch.bytes': o.maxPartitionFetchBytes,
      'fetch.max.bytes': o.maxFetchBytes,
      'receive.message.max.bytes': o.maxFetchBytes + 1024 * 1024,
      'partition.assignment.strategy': 'roundrobin',
      // Retries inside a batch can take minutes; the member stays in the group meanwhile.
      'max.poll.interval.ms': 600_000,
      ...(group ? { 'session.timeout.ms': group.sessionTimeoutMs, 'heartbeat.interval.ms': Math.max(500, Math.floor(group.sessionTimeoutMs / 5)) } : {}),
      rebalance_cb: (err: LibrdKafkaError, assignment: Assignment[]) => void this.rebalance(consumer, err, assignment),
    };
    // auto.offset.reset is a topic setting: in the global ones it is overridden by the (default) topic ones.
    const consumer = new rdkafka.KafkaConsumer(settings as never, { 'auto.offset.reset': 'earliest' }) as NativeConsumer;
    forwardLogs(consumer, o.logger);
    consumer.on('event.error', (err: LibrdKafkaError) => {
      if (err.isFatal) o.onFatal?.(new Error(err.message));
    });
    consumer.setDefaultConsumeTimeout(500);
    // Return as soon as something arrived, with whatever else is there, not after the full timeout.
    consumer.setDefaultIsTimeoutOnlyForFirstMessage(true);
    await new Promise<void>((resolve, reject) => consumer.connect({ timeout: 10_000 }, (err) => (err ? reject(err) : resolve())));
    this.consumer = consumer;
    const topic = o.topic;
    this.commits = new CommitBatcher((offsets, done) => consumer.commitCb(offsets.map(({ partition, offset }) => ({ topic, partition, offset })), done));
    this.running = true;
    if ('assign' in o.mode) {
      for (const p of o.mode.assign) this.assigned.add(p.partition);
      consumer.assign(o.mode.assign.map((p) => ({ topic: o.topic, partition: p.partition, offset: Number(p.offset) })));
    } else consumer.subscribe([o.topic]);
    this.loop = this.run();
  }

  private doing(what: string): void {
    this.current = { doing: what, since: Date.now() };
  }

  /** What the read loop is doing now, and for how long (ms). */
  phase(): { doing: string; forMs: number; assigned: number[] } {
    return { doing: this.current.doing, forMs: Date.now() - this.current.since, assigned: [...this.assigned] };
  }

  private bump(partition: number): void {
    this.generations.set(partition, (this.generations.get(partition) ?? 0) + 1);
  }

  /** Also called while disconnecting (the revocation): it must unassign then too, or the close never ends. */
  private async rebalance(consumer: NativeConsumer, err: LibrdKafkaError, assignment: Assignment[]): Promise<void> {
    const partitions = assignment.filter((a) => a.topic === this.options.topic).map((a) => a.partition);
    try {
      if (err.code === rdkafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS) {
        // No generation bump here: no record of these partitions can have been read before assign() below.
        for (const p of partitions) (this.assigned.add(p), this.paused.delete(p), this.committed.delete(p), this.seekTargets.delete(p), this.unsettledSeeks.delete(p));
        let from: Record<number, string> = {};
        try {
          from = (await this.options.onAssign?.(partitions)) ?? {};
        } catch (e) {
          logRetried(this.options.logger, 'could not read where to start; starting from the committed offsets', e, {});
        }
        consumer.assign(assignment.map((a) => (from[a.partition] !== undefined ? { ...a, offset: Number(from[a.partition]) } : a)));
        // What the group has committed, so `lastCommitted` knows it before this member commits.
        const toppars = partitions.map((partition) => ({ topic: this.options.topic, partition }));
        consumer.committed(toppars, 10_000, (e, offsets) => {
          if (e) return;
          for (const t of offsets ?? []) if (t.offset >= 0 && this.committed.get(t.partition) === undefined) this.committed.set(t.partition, BigInt(t.offset));
        });
      } else {
        for (const p of partitions) (this.bump(p), this.assigned.delete(p), this.paused.delete(p), this.unsettledSeeks.delete(p));
        consumer.unassign();
      }
    } catch (e) {
      if (consumer.isConnected()) this.options.logger.warn('rebalance failed', { error: (e as Error).message });
    }
  }

  private consume(n: number): Promise<Message[]> {
    return new Promise((resolve, reject) => this.consumer!.consume(n, (err, messages) => (err ? reject(err) : resolve(messages ?? []))));
  }

  private async run(): Promise<void> {
    const o = this.options;
    let failures = 0;
    while (this.running) {
      try {
        this.doing('waiting for a seek to be applied');
        await this.seeks;
        const before = new Map(this.generations);
        this.doing('reading from Kafka');
        const messages = await this.consume(o.maxRecordsPerRound);
        const receivedAt = Date.now();
        if (!this.running) break;
        const byPartition = new Map<number, ConsumedRecord[]>();
        const pausedFrom = new Map<number, string>();
        const reseek = new Map<number, string>();
        for (const m of messages) {
          if (m.topic !== o.topic || !this.assigned.has(m.partition)) continue;
          const unsettled = this.unsettledSeeks.get(m.partition);
          if (unsettled !== undefined) {
            // Read from where a failed seek left the position: aside, and the seek again.
            reseek.set(m.partition, unsettled);
            continue;
          }
          if (this.generations.get(m.partition) !== before.get(m.partition)) {
            // A seek (or a revocation and new assignment) happened while this read was under
            // way: these records may come from before or after it, and the position has moved
            // past them either way. Seek again, to where it was meant to go, before the next read.
            if (!reseek.has(m.partition)) reseek.set(m.partition, this.seekTargets.get(m.partition) ?? String(m.offset));
            continue;
          }
          // Paused meanwhile: not handed over, and read again from here once resumed.
          if (this.paused.has(m.partition)) {
            if (!pausedFrom.has(m.partition)) pausedFrom.set(m.partition, String(m.offset));
            continue;
          }
          let list = byPartition.get(m.partition);
          if (!list) byPartition.set(m.partition, (list = []));
          list.push(toRecord(m));
        }
        for (const [p, offset] of pausedFrom) this.seek(p, offset);
        for (const [p, offset] of reseek) this.seek(p, offset);
        const work = [...byPartition.entries()];
        for (let i = 0; i < work.length; i += o.concurrency) {
          const slice = work.slice(i, i + o.concurrency);
          this.doing(`delivering the batch of ${slice.map(([p, list]) => `partition ${p} (${list.length} records from offset ${list[0]!.offset})`).join(', ')}`);
          await Promise.all(slice.map(([p, list]) => this.batch(p, list, receivedAt)));
        }
        this.doing('committing the positions of idle partitions');
        if (o.onIdle) await this.idle(new Set(byPartition.keys()), before);
        failures = 0;
      } catch (err) {
        if (!this.running) break;
        failures++;
        logRetried(o.logger, 'kafka read failed; retrying', err, { attempt: failures });
        this.doing(`waiting to retry a failed read (${(err as Error).message})`);
        await sleep(Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  private async batch(partition: number, messages: ConsumedRecord[], receivedAt: number): Promise<void> {
    const generation = this.generations.get(partition);
    const committedBefore = this.committed.get(partition);
    const context: BatchContext = {
      isRunning: () => this.running,
      isStale: () => this.generations.get(partition) !== generation || !this.assigned.has(partition),
      receivedAt,
    };
    try {
      await this.options.eachBatch(partition, messages, context);
    } catch (err) {
      if (context.isStale() || !this.running) return;
      // Read again what this batch did not commit, after a pause (kafkajs did the same).
      const first = BigInt(messages[0]!.offset);
      const now = this.committed.get(partition);
      const done = now !== undefined && now !== committedBefore && now > first ? now : first;
      logRetried(this.options.logger, 'batch failed; reading it again', err, { partition });
      await sleep(500);
      if (!context.isStale()) this.seek(partition, done.toString());
    }
  }

  private async idle(busy: Set<number>, before: Map<number, number>): Promise<void> {
    const consumer = this.consumer!;
    // Not idle either: a partition sought, revoked or reassigned since the round began (its
    // records set aside for a seek or a pause included: seek() bumps the generation). Its
    // position is past records nobody delivered; committing it would skip them if the
    // partition moved before they were read again (a rebalance during a Kafka restart did).
    const idle = [...this.assigned].filter((p) => !busy.has(p) && !this.paused.has(p) && !this.unsettledSeeks.has(p) && this.generations.get(p) === before.get(p));
    if (idle.length === 0) return;
    let positions: TopicPartitionOffset[];
    try {
      positions = consumer.position(idle.map((partition) => ({ topic: this.options.topic, partition })));
    } catch {
      return;
    }
    // All at once: each is a commit round trip to the group coordinator, and after every
    // capture transaction each partition has a marker to pass, so one after another they
    // held up the next round by one round trip per idle partition.
    await Promise.all(positions.filter((p) => p.offset >= 0).map((p) => this.options.onIdle!(p.partition, String(p.offset))));
  }

  /** Commits `next` (the offset of the next record to read) for `partition`. */
  async commit(partition: number, next: string): Promise<void> {
    const commits = this.commits; // set and cleared with the consumer
    if (!commits) throw new Error('consumer not connected');
    // With the other commits of this loop turn, in one call (./commit-batcher.ts).
    await commits.commit(partition, Number(next));
    const at = BigInt(next);
    if (at > (this.committed.get(partition) ?? -1n)) this.committed.set(partition, at);
  }

  /** The offset this member last committed for `partition` (undefined until it committed). */
  lastCommitted(partition: number): bigint | undefined {
    return this.committed.get(partition);
  }

  /** Reads `partition` from `offset` next; the batch in hand for it becomes stale. */
  seek(partition: number, offset: string): void {
    const consumer = this.consumer;
    if (!consumer || !this.assigned.has(partition)) return;
    this.bump(partition);
    this.seekTargets.set(partition, offset);
    const generation = this.generations.get(partition);
    // Revoked, sought again, or stopping: that seek, the next owner or the next start decides.
    const wanted = () => this.running && this.assigned.has(partition) && this.generations.get(partition) === generation;
    this.seeks = this.seeks.then(async () => {
      const applied = await seekUntilApplied(
        () => new Promise<Error | null>((resolve) => consumer.seek({ topic: this.options.topic, partition, offset: Number(offset) }, 5000, (err) => resolve(err ? Object.assign(new Error(err.message), { code: err.code }) : null))),
        wanted,
        (err, attempt) => logRetried(this.options.logger, 'seek failed; trying again', err, { partition, offset, attempt }),
      );
      // Still failing: the partition's records are set aside and the seek made again after each
      // read (which also serves a rebalance that may be why it fails), never delivered from here.
      if (applied) this.unsettledSeeks.delete(partition);
      else if (wanted()) this.unsettledSeeks.set(partition, offset);
    });
  }

  /** Stops fetching `partitions` (all assigned when omitted). */
  pause(partitions?: number[]): void {
    const list = (partitions ?? [...this.assigned]).filter((p) => this.assigned.has(p));
    if (!this.consumer || list.length === 0) return;
    for (const p of list) this.paused.add(p);
    try {
      this.consumer.pause(list.map((partition) => ({ topic: this.options.topic, partition })));
    } catch (e) {
      this.options.logger.debug('pause failed', { error: (e as Error).message });
    }
  }

  /** Fetches `partitions` (all paused when omitted) again. */
  resume(partitions?: number[]): void {
    const list = (partitions ?? [...this.paused]).filter((p) => this.paused.has(p));
    if (!this.consumer || list.length === 0) return;
    for (const p of list) this.paused.delete(p);
    try {
      this.consumer.resume(list.map((partition) => ({ topic: this.options.topic, partition })));
    } catch (e) {
      this.options.logger.debug('resume failed', { error: (e as Error).message });
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop?.catch(() => {});
    this.loop = null;
    const consumer = this.consumer;
    this.consumer = null;
    this.commits = null;
    this.doing('leaving the group (librdkafka closing the consumer)');
    if (consumer?.isConnected()) await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
    this.doing('stopped');
  }
}

/**
 * A seek, tried `attempts` times while it still matters; true once applied. A seek that
 * failed left the position where the read had moved it, past the records it was meant to
 * read again (the rest of a batch stopped by an open circuit or a failure), and the next
 * commits would have passed them: those records would never have reached the sink
 * (BatchConsumer keeps such a partition's records aside until a seek succeeds).
 */
export async function seekUntilApplied(
  seekOnce: () => Promise<Error | null>,
  stillWanted: () => boolean,
  onRetry: (err: Error, attempt: number) => void,
  attempts = 3,
  wait: (ms: number) => Promise<void> = sleep,
): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    const err = await seekOnce();
    if (err === null) return true;
    if (!stillWanted()) return false;
    onRetry(err, attempt);
    if (attempt >= attempts) return false;
    await wait(100 * attempt);
    if (!stillWanted()) return false;
  }
}

/** A read or batch that failed and is done again: a warning, unless it is Kafka's churn (./librdkafka.ts isKafkaChurn). */
export function logRetried(logger: Logger, message: string, err: unknown, fields: Record<string, unknown>): void {
  const error = err instanceof Error ? err.message : String(err);
  (isKafkaChurn(err) ? logger.debug : logger.warn).call(logger, message, { ...fields, error });
}

function toRecord(m: Message): ConsumedRecord {
  const headers: ConsumedRecord['headers'] = {};
  for (const h of m.headers ?? []) for (const [k, v] of Object.entries(h)) headers[k] = v;
  const key = m.key === undefined || m.key === null ? null : Buffer.isBuffer(m.key) ? m.key : Buffer.from(String(m.key));
  return { key, value: m.value ?? null, offset: String(m.offset), timestamp: String(m.timestamp ?? -1), headers };
}
