import type { CheckpointedProducer, CheckpointedTransaction, OutgoingRecord } from '../kafka/checkpointed-producer.js';
import { RecordArena } from './record-arena.js';

/**
 * Chunks into Kafka transactions, pipelined as capture's batches are: while one chunk's
 * transaction commits (flush, offsets, commit: round trips, tens to hundreds of ms), the
 * next chunk is read and encoded. Kafka allows one open transaction per producer, so the
 * records read meanwhile wait here, and go into their own transaction once the one before
 * is committed; from then on the rest of the chunk streams straight into it.
 *
 * Each transaction carries exactly one chunk's records and the progress past that chunk,
 * so what is checkpointed is always what Kafka committed, and a failed commit fails the
 * next call (nothing after it is committed).
 *
 * Memory: at most `maxWaitingBytes` of records wait; past that, reading waits for the commit.
 */
export class ChunkPipeline<T> {
  private inFlight: Promise<void> | null = null;
  private failure: unknown = null;
  private tx: CheckpointedTransaction<T> | null = null;
  private waiting: OutgoingRecord[] = [];
  private waitingBytes = 0;
  /** Where record values are written (the encoder's `put`); reused once the records are produced. */
  readonly arena = new RecordArena();

  constructor(
    private readonly producer: CheckpointedProducer<T>,
    private readonly maxWaitingBytes: number,
  ) {}

  /** One record of the chunk being read; a promise only when the caller has to wait (for the commit, or for room in the producer's queue). */
  add(record: OutgoingRecord): Promise<void> | void {
    if (this.failure !== null) throw this.failure;
    if (this.tx !== null) return this.produce(this.tx, record);
    if (this.inFlight !== null && this.waitingBytes < this.maxWaitingBytes) {
      this.waiting.push(record);
      this.waitingBytes += record.value.length + record.key.length;
      return;
    }
    return this.open().then(() => this.produce(this.tx!, record));
  }

  /** Into the open transaction; once librdkafka has the record (and every one before it), the arena is free again. */
  private produce(tx: CheckpointedTransaction<T>, record: OutgoingRecord): Promise<void> | void {
    const room = tx.add(record);
    if (!room) return this.arena.recycle();
    return room.then(() => this.arena.recycle());
  }

  /**
   * The chunk is read: its transaction commits with `checkpoint` while the caller reads on.
   * `onCommitted` runs once Kafka has committed it; a failure is thrown by the next call.
   */
  async commit(checkpoint: T, onCommitted: () => void): Promise<void> {
    if (this.tx === null) await this.open();
    const tx = this.tx!;
    this.tx = null;
    // Never rejects (a rejection nobody awaits yet would be unhandled): a failure is kept for the next call.
    this.inFlight = tx
      .commit(checkpoint)
      .then(onCommitted)
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.inFlight = null;
      });
  }

  /** Waits for the commit in flight; throws its failure. */
  async settled(): Promise<void> {
    if (this.inFlight !== null) await this.inFlight;
    if (this.failure !== null) throw this.failure;
  }

  /** Drops the chunk being read (records waiting, its open transaction); the commit in flight goes on. */
  async abort(): Promise<void> {
    this.waiting = [];
    this.waitingBytes = 0;
    this.arena.recycle();
    const tx = this.tx;
    this.tx = null;
    // An open transaction means the one before it is committed (see `open`).
    await tx?.abort();
  }

  /** The next transaction, once the one in flight is committed, with the records that waited for it. */
  private async open(): Promise<void> {
    await this.settled();
    this.tx = await this.producer.begin();
    const waiting = this.waiting;
    this.waiting = [];
    this.waitingBytes = 0;
    for (const record of waiting) {
      const room = this.tx.add(record);
      if (room) await room;
    }
    this.arena.recycle();
  }
}
