/**
 * What capture may confirm to PostgreSQL, and when, while a Kafka transaction is in
 * flight. Confirming an LSN lets PostgreSQL discard the WAL before it, so an LSN is only
 * confirmed once every change before it is committed in Kafka:
 *  - a batch's LSN when its commit succeeds (`committed`);
 *  - an LSN that needed no Kafka write (a skipped or empty transaction, a keepalive) at
 *    once when nothing is in flight, else held until the commit in flight before it is done;
 *  - nothing after a failed commit, not even an LSN that needed no write (capture restarts
 *    from the checkpoint; the loop sees the failure only at its next turn, and a keepalive
 *    read in that turn would otherwise have moved the slot past the batch that failed).
 * Pure, so the ordering is unit-tested; the crash proof tests it with the real servers.
 */
export class ConfirmGate {
  private committing = false;
  private held: bigint | null = null;
  private broken = false;

  constructor(private readonly confirm: (lsn: bigint) => void) {}

  /** A Kafka transaction was handed over; one at a time. */
  begin(): void {
    if (this.committing) throw new Error('a Kafka transaction is already in flight');
    this.committing = true;
  }

  /** `lsn`: the end LSN of the last PostgreSQL transaction the commit covers entirely, if any. */
  committed(lsn: bigint | null): void {
    this.committing = false;
    if (this.broken) return;
    if (lsn !== null) this.confirm(lsn);
    if (this.held !== null) this.confirm(this.held);
    this.held = null;
  }

  failed(): void {
    this.committing = false;
    this.broken = true;
    this.held = null;
  }

  /** An LSN every change before which is in Kafka or needs no write. */
  confirmWhenCommitted(lsn: bigint): void {
    if (this.broken) return;
    if (!this.committing) this.confirm(lsn);
    else if (this.held === null || lsn > this.held) this.held = lsn;
  }
}
