/**
 * The bytes of a backfill's record values, written into a few large reused slabs rather
 * than a Buffer each. A Buffer per record (Buffer.from) took a slice of node's 8 KiB pool,
 * so one new ArrayBuffer every ten records, each freed only by a garbage collection: a
 * chunk waiting for a commit held 20-30 MB of them. Here memory is reused as soon as
 * librdkafka has copied the records (it copies on produce), which the pipeline says with
 * `recycle`: records leave in the order they were written, so after the last one is
 * produced, every slab is free again.
 */
export class RecordArena {
  private slab: Buffer;
  private position = 0;
  /** Slabs filled since the last recycle: records waiting for their transaction still point into them. */
  private full: Buffer[] = [];
  private spare: Buffer[] = [];

  constructor(
    private readonly slabBytes = 1024 * 1024,
    /** Free slabs kept for the next chunk; the rest go back to the garbage collector. */
    private readonly maxSpare = 4,
  ) {
    this.slab = Buffer.allocUnsafe(slabBytes);
  }

  /** The UTF-8 bytes of `text`, valid until the next `recycle`. */
  put(text: string): Buffer {
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    const most = text.length * 3;
    if (most > this.slabBytes) return Buffer.from(text);
    if (this.position + most > this.slab.length) {
      this.full.push(this.slab);
      this.slab = this.spare.pop() ?? Buffer.allocUnsafe(this.slabBytes);
      this.position = 0;
    }
    const start = this.position;
    this.position += this.slab.write(text, start, 'utf8');
    return this.slab.subarray(start, this.position);
  }

  /** Every record put so far has been handed over (copied): its bytes may be written over. */
  recycle(): void {
    this.position = 0;
    for (const slab of this.full) if (this.spare.length < this.maxSpare) this.spare.push(slab);
    this.full = [];
  }
}
