import type { OutgoingRecord } from './kafka-writer.js';

/** Size of each buffer records are written into; a record bigger than this gets a buffer of its own size. */
const CHUNK_BYTES = 1 << 20;

/**
 * The records of one capture batch, written as UTF-8 into a few 1 MiB buffers, with their
 * places kept in one array of numbers. A batch lives while the transaction before it
 * commits (see Capturer.loop), long enough for V8 to promote what it holds to the old
 * generation: as a Buffer and a record object per event (10,000 objects per batch of 5,000)
 * that was most of the garbage the capturer's major collections had to sweep, and of the
 * heap and external memory in its RSS. Here a batch is a handful of objects; the Buffer
 * views Kafka's client needs are made only when the batch is sent (`records`).
 */
export class RecordBuffer {
  /**
   * `pool`: buffers of batches already committed, to write into again. A batch's buffers,
   * dropped, are freed only when a major collection finds their (promoted) Buffer objects:
   * until then they were 10-35 MiB of capture's external memory; reused, two batches' worth is all there is.
   */
  constructor(private readonly pool: ChunkPool = new ChunkPool()) {}

  private readonly chunks: Buffer[] = [];
  private chunk: Buffer | null = null;
  private used = 0;
  /** Per record: chunk index, key start, value start, value end. */
  private readonly spans: number[] = [];
  private valueBytes = 0;

  get length(): number {
    return this.spans.length / 4;
  }

  /** UTF-8 bytes of the values written so far (what capture.maxBatchBytes counts). */
  get bytes(): number {
    return this.valueBytes;
  }

  /** Adds one record; `valueBytes` is `Buffer.byteLength(value)`, which the caller already knows. */
  append(key: string, value: string, valueBytes: number): void {
    const keyBytes = Buffer.byteLength(key);
    const needed = keyBytes + valueBytes;
    if (this.chunk === null || this.used + needed > this.chunk.length) {
      this.chunk = needed <= CHUNK_BYTES ? this.pool.take() : Buffer.allocUnsafeSlow(needed);
      this.chunks.push(this.chunk);
      this.used = 0;
    }
    const start = this.used;
    const keyEnd = start + this.chunk.write(key, start, keyBytes, 'utf8');
    const end = keyEnd + this.chunk.write(value, keyEnd, valueBytes, 'utf8');
    if (end - start !== needed) throw new Error(`record buffer: wrote ${end - start} bytes, expected ${needed}`);
    this.used = end;
    this.spans.push(this.chunks.length - 1, start, keyEnd, end);
    this.valueBytes += valueBytes;
  }

  /**
   * Gives the buffers back to the pool: only once nothing reads the records any more (Kafka's
   * client copies each record when it is produced, so once the transaction is committed).
   */
  release(): void {
    for (const chunk of this.chunks) this.pool.give(chunk);
    this.chunks.length = 0;
    this.spans.length = 0;
    this.chunk = null;
    this.used = 0;
    this.valueBytes = 0;
  }

  /** The records as Kafka's client takes them: views on the buffers, valid as long as this batch is. */
  records(): Array<OutgoingRecord & { key: Buffer; value: Buffer }> {
    const out: Array<OutgoingRecord & { key: Buffer; value: Buffer }> = new Array(this.length);
    const spans = this.spans;
    for (let i = 0, r = 0; i < spans.length; i += 4, r++) {
      const chunk = this.chunks[spans[i]!]!;
      out[r] = { key: chunk.subarray(spans[i + 1], spans[i + 2]), value: chunk.subarray(spans[i + 2], spans[i + 3]) };
    }
    return out;
  }
}

/** Free 1 MiB buffers of a capturer's record buffers; keeps at most `max` of them. */
export class ChunkPool {
  private readonly free: Buffer[] = [];

  constructor(private readonly max = 16) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
  }

  give(chunk: Buffer): void {
    if (chunk.length === CHUNK_BYTES && this.free.length < this.max) this.free.push(chunk);
  }

  get size(): number {
    return this.free.length;
  }
}
