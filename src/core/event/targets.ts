import type { SinkName } from '../sinks/contract.js';

/**
 * A record meant for some sinks only (a backfill into one sink: `backfill --sink redis`)
 * names them in this header; a record without it is for every sink. Every deliverer reads
 * every record of the changes topic in order and skips those not meant for it: the skipped
 * record is passed like a delivered one (its offset moves on), so each sink stays ordered
 * and exactly once, and no other sink sees the backfill.
 */
export const TARGET_SINKS_HEADER = 'streamctl-sinks';

/** The header for a record meant only for `sinks`; none when it is for every sink. */
export function targetSinksHeaders(sinks: readonly SinkName[] | null): Record<string, string> | undefined {
  return sinks === null || sinks.length === 0 ? undefined : { [TARGET_SINKS_HEADER]: [...sinks].sort().join(',') };
}

type HeaderValue = Buffer | string | Array<Buffer | string> | undefined;

/** Whether a record with these Kafka headers is for `sink` (no header: for every sink). */
export function isForSink(headers: Record<string, HeaderValue> | undefined, sink: SinkName): boolean {
  const value = headers?.[TARGET_SINKS_HEADER];
  if (value === undefined) return true;
  const text = (Array.isArray(value) ? value : [value]).map((v) => v.toString()).join(',');
  return text.split(',').map((s) => s.trim()).includes(sink);
}
