import { formatLsn, parseLsn } from '../event/lsn.js';

/**
 * How far capture got, written in the same Kafka transaction as the changes it covers.
 * `lsn` is the commit LSN of the last PostgreSQL transaction written; `complete` says
 * whether all of it was, and if not, `position` is the last change of it that was (a
 * transaction too big for one batch is split across Kafka transactions).
 */
export interface Checkpoint {
  pipeline: string;
  lsn: string;
  position: number | null;
  complete: boolean;
  /** End LSN of the last complete transaction: what may be confirmed to PostgreSQL. */
  confirmed_end_lsn: string | null;
  written_at: string;
  /** Changes written by the capturer, all runs together (for status and tests). */
  events_total: number;
}

/** True when the change at (commitLsn, position) is already in Kafka, per the checkpoint. */
export function isCovered(checkpoint: Checkpoint | null, commitLsn: bigint, position: number): boolean {
  if (!checkpoint) return false;
  const done = parseLsn(checkpoint.lsn);
  if (commitLsn < done) return true;
  if (commitLsn > done) return false;
  return checkpoint.complete || (checkpoint.position !== null && position <= checkpoint.position);
}

/** True when every change of the transaction committed at commitLsn is already in Kafka. */
export function isTransactionCovered(checkpoint: Checkpoint | null, commitLsn: bigint): boolean {
  if (!checkpoint) return false;
  const done = parseLsn(checkpoint.lsn);
  return commitLsn < done || (commitLsn === done && checkpoint.complete);
}

export function encodeCheckpoint(c: Checkpoint): string {
  return JSON.stringify(c);
}

export function decodeCheckpoint(text: string | null | undefined): Checkpoint | null {
  if (!text) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`the capture checkpoint in Kafka is not JSON: ${text.slice(0, 200)}`);
  }
  const c = parsed as Partial<Checkpoint>;
  if (typeof c.lsn !== 'string' || typeof c.complete !== 'boolean' || typeof c.pipeline !== 'string') {
    throw new Error(`the capture checkpoint in Kafka is malformed: ${text.slice(0, 200)}`);
  }
  parseLsn(c.lsn); // throws on a bad LSN
  return {
    pipeline: c.pipeline,
    lsn: c.lsn,
    position: typeof c.position === 'number' ? c.position : null,
    complete: c.complete,
    confirmed_end_lsn: typeof c.confirmed_end_lsn === 'string' ? c.confirmed_end_lsn : null,
    written_at: typeof c.written_at === 'string' ? c.written_at : '',
    events_total: typeof c.events_total === 'number' ? c.events_total : 0,
  };
}
