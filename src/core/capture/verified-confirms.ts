/**
 * What capture tells PostgreSQL it may forget, held until Kafka shows it again.
 *
 * Kafka answering a commit is not enough. After a broker was stopped (SIGTERM) during
 * capture's first transactions, the restart test saw Kafka come back with the last answered
 * transaction's checkpoint never materialised (its offsets still pending on
 * `__consumer_offsets`, the transaction forgotten by its coordinator) and its changes not in
 * the topic; capture had already confirmed their LSNs, so PostgreSQL had discarded them and
 * no restart could read them again. Now an LSN is confirmed only once a stable read of the
 * checkpoint group's offset (it holds the checkpoint's events_total, and a read_committed
 * fetch waits while offsets are pending) shows the commit that covers it. Until then the
 * slot stays behind, which is always safe: a restart from an older slot position skips what
 * the checkpoint covers.
 *
 * Pure: the reads are made by the capturer (./capturer.ts), the order rules tested here.
 */
export class VerifiedConfirms {
  /** events_total of the last checkpoint Kafka has shown committed (on a read, or at start). */
  private shown: number;
  /** LSNs in increasing order, each with the events_total of the commit that covers it. */
  private readonly waiting: Array<{ lsn: bigint; needs: number }> = [];

  constructor(
    startEventsTotal: number,
    private readonly confirm: (lsn: bigint) => void,
  ) {
    this.shown = startEventsTotal;
  }

  /**
   * `lsn` is covered by a commit Kafka answered, whose checkpoint counts `needs` events:
   * confirmed at once if Kafka has shown that much already, else once a read shows it.
   */
  offer(lsn: bigint, needs: number): void {
    if (needs <= this.shown && this.waiting.length === 0) return this.confirm(lsn);
    const last = this.waiting[this.waiting.length - 1];
    // Same commit (a keepalive after the batch's own LSN): the later LSN stands for both.
    if (last && last.needs >= needs) last.lsn = last.lsn > lsn ? last.lsn : lsn;
    else this.waiting.push({ lsn, needs });
  }

  /** Something waits for a read; the read must show at least this events_total (every offer's commit was answered before it). */
  wanted(): number | null {
    return this.waiting.length === 0 ? null : this.waiting[this.waiting.length - 1]!.needs;
  }

  /**
   * A stable read of the checkpoint, begun when `wanted()` was `asked`, shows `eventsTotal`.
   * Everything it covers is confirmed. Showing less than `asked` means Kafka lost a commit it
   * had answered: nothing more is confirmed, and the caller restarts capture from what Kafka
   * shows (the slot has not passed it), so those changes are read from PostgreSQL again.
   */
  readBack(eventsTotal: number, asked: number): 'ok' | 'lost' {
    if (eventsTotal > this.shown) this.shown = eventsTotal;
    let lsn: bigint | null = null;
    while (this.waiting.length > 0 && this.waiting[0]!.needs <= this.shown) lsn = this.waiting.shift()!.lsn;
    if (lsn !== null) this.confirm(lsn);
    return eventsTotal < asked ? 'lost' : 'ok';
  }
}

/** Kafka shows less than a commit it answered: capture restarts from what Kafka shows (./verified-confirms.ts). */
export class KafkaLostCommitError extends Error {
  override readonly name = 'KafkaLostCommitError';
  constructor(
    readonly shown: number,
    readonly answered: number,
  ) {
    super(
      `Kafka answered the commit of capture's checkpoint at ${answered} events but now shows ${shown}: ` +
        'those changes are not confirmed to PostgreSQL, and capture restarts from the checkpoint Kafka shows to write them again',
    );
  }
}
