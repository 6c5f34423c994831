import type { ChangeEvent, OversizeInfo, Row } from './envelope.js';
import { recordKey } from './identity.js';

/**
 * The size limit of one event, decided when the record is built (before any Kafka writer),
 * so one huge row never reaches Kafka as a record the broker refuses: that refusal failed
 * the whole transaction, and capture (or a backfill resumed) hit the same row forever.
 *
 * An event whose JSON exceeds `maxBytes`:
 *  1. under REPLICA IDENTITY FULL `before` can be as big as the row: it is cut to the key
 *     columns first (`before_trimmed: true`), which sinks do not need more of;
 *  2. if still too big, it is replaced by an oversize marker: the same id, key, lsn,
 *     position and source, `op: 'oversize'`, no row images, and `oversize` saying what it
 *     replaced (the op, the event's size, the limit, each column's size). Sinks never apply
 *     a marker: the delivery pipeline sends it to the DLQ of every sink (class 'oversize'),
 *     so it is seen, counted and kept. The row is brought in later, once the limit is
 *     raised, by a keyed backfill (`backfill --table T --where` on its key): its read is
 *     newer than every change before it, so the sinks take it.
 */
export interface EncodedEvent {
  key: Buffer;
  value: Buffer;
  /** Set when the event was replaced by an oversize marker. */
  oversize: OversizeInfo | null;
}

/** The same, with the texts left for the caller to write as UTF-8 (capture writes them straight into its batch buffer). */
export interface EncodedEventText {
  key: string;
  value: string;
  /** UTF-8 bytes of `value`: what the limit is checked against. */
  bytes: number;
  oversize: OversizeInfo | null;
}

function columnSizes(row: Row | null): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const [column, value] of Object.entries(row ?? {})) sizes[column] = Buffer.byteLength(JSON.stringify(value ?? null));
  return sizes;
}

/**
 * The value within `maxBytes` (see above), each candidate encoded once by `encode` and
 * measured by `size`: the JSON of an event within the limit, the common case, is made
 * exactly once.
 */
function fit<T>(event: ChangeEvent, maxBytes: number, encode: (event: ChangeEvent) => T, size: (value: T) => number): { value: T; bytes: number; oversize: OversizeInfo | null } {
  const value = encode(event);
  const bytes = size(value);
  if (bytes <= maxBytes || event.op === 'oversize') return { value, bytes, oversize: null };
  if (event.before !== null && event.key !== null) {
    const trimmed = encode({ ...event, before: { ...event.key }, before_trimmed: true });
    const trimmedBytes = size(trimmed);
    if (trimmedBytes <= maxBytes) return { value: trimmed, bytes: trimmedBytes, oversize: null };
  }
  const oversize: OversizeInfo = { op: event.op, bytes, limit_bytes: maxBytes, columns: columnSizes(event.after ?? event.before) };
  const { unchanged: _unchanged, before_trimmed: _trimmed, ...rest } = event;
  const marker: ChangeEvent = { ...rest, op: 'oversize', before: null, after: null, oversize };
  const markerValue = encode(marker);
  return { value: markerValue, bytes: size(markerValue), oversize };
}

const jsonBuffer = (event: ChangeEvent): Buffer => Buffer.from(JSON.stringify(event));
const bufferBytes = (value: Buffer): number => value.length;
const jsonText = (event: ChangeEvent): string => JSON.stringify(event);

/** The Kafka record of an event, within `maxBytes` (see above). */
export function encodeEvent(event: ChangeEvent, maxBytes: number): EncodedEvent {
  const { value, oversize } = fit(event, maxBytes, jsonBuffer, bufferBytes);
  return { key: Buffer.from(recordKey(event.schema, event.table, event.key)), value, oversize };
}

/** The Kafka record of an event as text, within `maxBytes` (see above). */
export function encodeEventText(event: ChangeEvent, maxBytes: number): EncodedEventText {
  const { value, bytes, oversize } = fit(event, maxBytes, jsonText, Buffer.byteLength);
  return { key: recordKey(event.schema, event.table, event.key), value, bytes, oversize };
}

/** What the error log line of an oversize marker says: which row, how big, and the way out. */
export function oversizeLogFields(event: ChangeEvent, info: OversizeInfo): Record<string, string | number> {
  const biggest = Object.entries(info.columns)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([c, n]) => `${c}=${n}`)
    .join(',');
  return {
    table: `${event.schema}.${event.table}`,
    key: JSON.stringify(event.key),
    op: info.op,
    lsn: event.lsn ?? '',
    bytes: info.bytes,
    limit_bytes: info.limit_bytes,
    largest_columns: biggest,
    fix: 'raise kafka.maxRecordBytes (and the topics\' max.message.bytes), then streamctl backfill --table <table> --where "<key condition>"',
  };
}
