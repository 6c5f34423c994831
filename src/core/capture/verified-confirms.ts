/**
 * What capture tells PostgreSQL it may forget, held until Kafka shows it.
 *
 * Confirming an LSN lets PostgreSQL discard the WAL before it, so an LSN is confirmed only
 * once every change before it is in a checkpoint Kafka shows committed: each LSN is offered
 * with the events_total of the checkpoint that covers it, and confirmed once a read shows a
 * checkpoint of at least that many events.
 *  - A batch's own LSN, when its commit is answered (`committed`): needs that batch's checkpoint.
 *  - An LSN that needed no Kafka write (`unwritten`: a skipped or empty transaction, a
 *    keepalive): needs the checkpoint of the last batch handed to Kafka (`handedOver`),
 *    committed or still in flight. So it
 *    waits for the commit in flight, and after a failed commit it is never confirmed (Kafka
 *    never shows that checkpoint; capture restarts with a new one of these).
 *
 * Kafka answering a commit is not enough. After a broker was stopped (SIGTERM) during
 * capture's first transactions, the restart test saw Kafka come back with the last answered
 * transaction's checkpoint never materialised (its offsets still pending on
 * `__consumer_offsets`, the transaction forgotten by its coordinator) and its changes not in
 * the topic; capture had already confirmed their LSNs, so PostgreSQL had discarded them and
 * no restart could read them again. The reads are of the checkpoint group's offset (it holds
 * the checkpoint's events_total) with a read_committed fetch, which waits while offsets are
 * pending (./read-backs.ts). Until a read shows it the slot stays behind, which is always
 * safe: a restart from an older slot position skips what the checkpoint covers.
 *
 * Pure: the reads are made by ./read-backs.ts, the order rules tested here.
 */
export class VerifiedConfirms {
  /** events_total of the last checkpoint Kafka has shown committed (on a read, or at start). */
  private shown: number;
  /** events_total of the last checkpoint whose commit Kafka answered. */
  private answeredTotal: number;
  /** events_total of the last checkpoint handed to Kafka, committed or in flight. */
  private handedTotal: number;
  /** LSNs in increasing order, each with the events_total of the checkpoint that covers it. */
  private readonly waiting: Array<{ lsn: bigint; needs: number }> = [];

  constructor(
    startEventsTotal: number,
    private readonly confirm: (lsn: bigint) => void,
  ) {
    this.shown = this.answeredTotal = this.handedTotal = startEventsTotal;
  }

  /** A batch whose checkpoint counts `eventsTotal` events was handed to Kafka. */
  handedOver(eventsTotal: number): void {
    this.handedTotal = eventsTotal;
  }

  /** Kafka answered the commit of that checkpoint; `lsn`: the end of the last PostgreSQL transaction it covers entirely, if any. */
  committed(lsn: bigint | null, eventsTotal: number): void {
    this.answeredTotal = eventsTotal;
    if (lsn !== null) this.offer(lsn, eventsTotal);
  }

  /** Every change before `lsn` is handled and needed no Kafka write of its own (a skipped or empty transaction, a keepalive). */
  unwritten(lsn: bigint): void {
    this.offer(lsn, this.handedTotal);
  }

  /** events_total of the last checkpoint whose commit Kafka answered (a read showing less is a lost commit: ./read-backs.ts). */
  answered(): number {
    return this.answeredTotal;
  }

  /** True while an LSN waits for a read. */
  waits(): boolean {
    return this.waiting.length > 0;
  }

  /** A read shows a checkpoint of `eventsTotal` events committed: everything it covers is confirmed. */
  readBack(eventsTotal: number): void {
    if (eventsTotal > this.shown) this.shown = eventsTotal;
    let lsn: bigint | null = null;
    while (this.waiting.length > 0 && this.waiting[0]!.needs <= this.shown) lsn = this.waiting.shift()!.lsn;
    if (lsn !== null) this.confirm(lsn);
  }

  /** Confirmed at once if Kafka has shown `needs` events already and nothing waits, else once a read shows them. Offers come in LSN order. */
  private offer(lsn: bigint, needs: number): void {
    if (needs <= this.shown && this.waiting.length === 0) return this.confirm(lsn);
    const last = this.waiting[this.waiting.length - 1];
    // Covered by the same checkpoint (a keepalive read while the batch commits, then the
    // batch's own LSN): one entry, the larger LSN.
    if (last && last.needs >= needs) last.lsn = last.lsn > lsn ? last.lsn : lsn;
    else this.waiting.push({ lsn, needs });
  }
}

/** Kafka shows less than a commit it answered: capture restarts from what Kafka shows (./read-backs.ts). */
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
