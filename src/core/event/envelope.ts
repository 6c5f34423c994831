/** The change event of schemas/event.v1.schema.json, as TypeScript. */

export const ENVELOPE_VERSION = 1 as const;

export type Op = 'insert' | 'update' | 'delete' | 'truncate' | 'read';
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
