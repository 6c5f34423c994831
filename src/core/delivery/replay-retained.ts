import { endOffsets, type OffsetsAdmin } from '../clients/rdkafka.js';
import { LazyAdmin } from './lazy-admin.js';
import type { Logger } from '../logger.js';
import type { SinkName } from '../sinks/contract.js';

/** What a sink lost with its history, for /ready's `warnings` and `status`. */
export interface HistoryLost {
  sink: SinkName;
  at: string;
  message: string;
  fix: string;
  /** Per partition, the offsets of the events gone from the changes topic too: [0, first_retained). */
  lost: Array<{ partition: number; first_retained: string }>;
}

/** The lost range in words: offsets no longer in the topic, per partition; none when every partition starts at 0. */
export function lostRange(earliest: Array<{ partition: number; low: string }>): { lost: HistoryLost['lost']; words: string } {
  const lost = earliest.filter((p) => p.low !== '0').map((p) => ({ partition: p.partition, first_retained: p.low }));
  const words =
    lost.length === 0
      ? 'nothing: the changes topic still holds every event, all replayed into the new table'
      : `the events before ${lost.map((p) => `offset ${p.first_retained} of partition ${p.partition}`).join(', ')} (deleted from the changes topic by retention); everything after is replayed`;
  return { lost, words };
}

/** What the replay needs of the consumer: to move one of its partitions (clients/batch-consumer.ts). */
export interface SeekingConsumer {
  seek(partition: number, offset: string): void;
}

/**
 * A sink whose stored history was dropped (a BigQuery table recreated empty) gets back what
 * the changes topic still holds: this member's partitions are sought to their earliest
 * retained offset and delivered again. Safe because the sink dedupes by event id (the
 * changes_once view), so events it still had, or that arrive twice, count once.
 */
export class RetainedReplay {
  private assignedNow: number[] = [];
  private readonly admin: LazyAdmin;
  private last: HistoryLost | null = null;
  /** Found when the sink started: whether the sink had history is decided before the consumer joins, then replayed once it has its partitions. */
  private check: Promise<string | null> | null = null;
  private pending: string | null = null;

  constructor(
    adminClients: { admin(): OffsetsAdmin },
    private readonly sink: SinkName,
    private readonly topic: string,
    private readonly group: string,
    private readonly logger: Logger,
  ) {
    this.admin = new LazyAdmin(adminClients);
  }

  private consumer: SeekingConsumer | null = null;

  /** A new start of the runner: the consumer and its partitions are new too. */
  reset(): void {
    this.consumer = null;
    this.assignedNow = [];
    this.check = null;
    this.pending = null;
  }

  /** Before the consumer joins: a table missing at start lost history only if the group had delivered to it (else it is a new pipeline's). */
  async settle(): Promise<void> {
    if (this.check) this.pending = await this.check;
    this.check = null;
  }

  /** The consumer this member seeks with. */
  watch(consumer: SeekingConsumer): void {
    this.consumer = consumer;
  }

  /** This member's partitions, at every assignment: a loss found at the sink's start is replayed once they are known. */
  assigned(partitions: number[]): void {
    this.assignedNow = partitions;
    const what = this.pending;
    this.pending = null;
    if (what !== null && this.consumer) this.run(this.consumer, what);
  }

  /** A loss found now (replayed at once) or at the sink's start (replayed after the join, if the sink had history). */
  request(what: string, atStart: boolean): void {
    if (atStart) this.check = this.hadHistory().then((had) => (had ? what : null), () => what);
    else if (!this.consumer) this.pending = what;
    else this.run(this.consumer, what);
  }

  private async hadHistory(): Promise<boolean> {
    const committed = (await (await this.admin.get()).fetchOffsets({ groupId: this.group, topics: [this.topic] })).flatMap((t) => t.partitions);
    return committed.some((p) => BigInt(p.offset) > 0n);
  }

  private run(consumer: SeekingConsumer, what: string): void {
    void this.replay(consumer, what).catch((err: Error) => this.logger.error('could not replay the changes topic', { error: err.message }));
  }

  /** Seeks this member's partitions to the earliest retained offset and says what is gone for good. */
  async replay(consumer: SeekingConsumer, what: string): Promise<void> {
    const earliest = (await endOffsets(await this.admin.get(), this.topic)).filter((p) => this.assignedNow.includes(p.partition));
    const { lost, words } = lostRange(earliest);
    for (const p of earliest) consumer.seek(p.partition, p.low);
    const message = `${what}: history lost is ${words}`;
    this.last = {
      sink: this.sink,
      at: new Date().toISOString(),
      message,
      fix: lost.length === 0 ? 'nothing to do: the replay restores it' : `streamctl backfill --sink ${this.sink} --table <each table> adds the current rows of what is gone (their earlier changes cannot come back)`,
      lost,
    };
    this.logger.error(message, { partitions: earliest.map((p) => `${p.partition}@${p.low}`).join(','), fix: this.last.fix });
  }

  /** The last loss this process saw (kept for status until it stops). */
  warning(): HistoryLost | null {
    return this.last;
  }

  async stop(): Promise<void> {
    await this.admin.stop();
  }
}
