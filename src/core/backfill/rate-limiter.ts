/**
 * `--rate`: at most `rowsPerSecond` on average. Chunks are read whole (a chunk is one
 * snapshot and one Kafka transaction), so the limiter paces the starts of chunks: after a
 * chunk of n rows, the next may start n / rate seconds after this one could. Time is
 * passed in, so the arithmetic is tested without waiting.
 */
export class RateLimiter {
  private nextStartMs: number | null = null;

  constructor(readonly rowsPerSecond: number) {
    if (!(rowsPerSecond > 0) || !Number.isFinite(rowsPerSecond)) throw new RangeError(`rate must be a positive number of rows per second, got ${rowsPerSecond}`);
  }

  /** Milliseconds to wait, at `nowMs`, before the next chunk may start. */
  waitMs(nowMs: number): number {
    return this.nextStartMs === null ? 0 : Math.max(0, this.nextStartMs - nowMs);
  }

  /**
   * A chunk of `rows` started at `startedMs`. Time spent idle before it is not saved up,
   * so a backfill that was slow for a while does not burst above the rate afterwards.
   */
  record(rows: number, startedMs: number): void {
    const from = this.nextStartMs === null ? startedMs : Math.max(this.nextStartMs, startedMs);
    this.nextStartMs = from + (rows * 1000) / this.rowsPerSecond;
  }

  /**
   * Chunk size under a rate: about one second of rows, so a chunk never holds its Kafka
   * transaction open for long while the limiter would make the rows trickle.
   */
  static chunkSizeFor(chunkSize: number, rowsPerSecond: number | null): number {
    if (rowsPerSecond === null) return chunkSize;
    return Math.max(1, Math.min(chunkSize, Math.floor(rowsPerSecond)));
  }
}
