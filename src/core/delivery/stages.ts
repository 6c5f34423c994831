/**
 * Where one event's time went on its way to a sink, from the clocks the deliverer can see
 * (all on the same host in a local pipeline; across hosts the first two carry the clock skew):
 *
 * - `capture`: PostgreSQL commit (the event's commit_ts) -> the record's Kafka timestamp
 *   (capture's produce call: WAL read, decode, the batch's linger);
 * - `kafka`: the record's timestamp -> the deliverer's consumer handed it to JavaScript
 *   (capture's transaction commit, which makes it visible to read_committed, the fetch, and
 *   the wait for the consumer's previous round and the event loop);
 * - `write`: handed over -> the sink acknowledged it (the wait for earlier units of the same
 *   partition, the transform, the write itself and its retries).
 *
 * Their sum is processing_latency_seconds (commit -> acknowledgement).
 */
export const DELIVERY_STAGES = ['capture', 'kafka', 'write'] as const;
export type DeliveryStage = (typeof DELIVERY_STAGES)[number];

export interface StageClocks {
  /** The event's commit_ts (ISO text), as PostgreSQL stamped it. */
  commitTs: string | undefined;
  /** The Kafka record's timestamp, ms since the epoch (librdkafka: -1 or 0 when unknown). */
  recordTimestampMs: number;
  /** When the consumer handed the record over, ms since the epoch. */
  receivedAtMs: number | undefined;
  /** When the sink acknowledged it, ms since the epoch. */
  writtenAtMs: number;
}

/**
 * Seconds per stage; a stage whose clocks are missing is left out. A negative span (clock
 * skew between hosts, or a record timestamp from a producer's clock) counts as 0 rather than
 * being dropped, so the counts of the three stages stay equal.
 */
export function deliveryStages(c: StageClocks): Partial<Record<DeliveryStage, number>> {
  const out: Partial<Record<DeliveryStage, number>> = {};
  const committed = c.commitTs === undefined ? NaN : Date.parse(c.commitTs);
  const produced = c.recordTimestampMs > 0 ? c.recordTimestampMs : NaN;
  const received = c.receivedAtMs ?? NaN;
  const span = (from: number, to: number) => (Number.isFinite(from) && Number.isFinite(to) ? Math.max(0, to - from) / 1000 : undefined);
  const capture = span(committed, produced);
  const kafka = span(produced, received);
  const write = span(received, c.writtenAtMs);
  if (capture !== undefined) out.capture = capture;
  if (kafka !== undefined) out.kafka = kafka;
  if (write !== undefined) out.write = write;
  return out;
}
