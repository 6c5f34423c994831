/** The change event of schemas/event.v1.schema.json, as TypeScript. */

export const ENVELOPE_VERSION = 1 as const;

/** 'oversize': a marker in place of an event over kafka.maxRecordBytes (see oversize.ts). */
export type Op = 'insert' | 'update' | 'delete' | 'truncate' | 'read' | 'oversize';
export type Row = Record<string, unknown>;

export interface ChangeEvent {
  id: string;
  version: typeof ENVELOPE_VERSION;
  op: Op;
  schema: string;
  table: string;
  key: Row | null;
  before: Row | null;
  after: Row | null;
  /** Columns not sent because their TOASTed value did not change. */
  unchanged?: string[];
  /** `before` was cut to the key columns to keep the event within kafka.maxRecordBytes. */
  before_trimmed?: boolean;
  /** On an oversize marker: what it replaces. */
  oversize?: OversizeInfo;
  /** On the delete that ends the old key of a primary-key change: the row's new key. */
  moved_to?: Row;
  /** On the update that starts the new key of a primary-key change: the row's old key. */
  moved_from?: Row;
  lsn: string | null;
  position?: number;
  xid: number | null;
  commit_ts: string;
  source: { pipeline: string; db: string; kind: 'cdc' | 'backfill'; slot?: string; run?: string };
}

export interface OversizeInfo {
  /** The op of the event the marker replaces. */
  op: Exclude<Op, 'oversize'>;
  /** Size of the event's JSON, in bytes. */
  bytes: number;
  limit_bytes: number;
  /** Bytes of each column's JSON value in the row image (after, or before for a delete). */
  columns: Record<string, number>;
}
