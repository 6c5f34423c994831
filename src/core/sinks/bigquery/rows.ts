import type { TableField } from '@google-cloud/bigquery';
import type { ChangeEvent } from '../../event/envelope.js';
import { canonicalJson } from '../../event/identity.js';
import { eventVersion } from '../../event/version.js';

/**
 * The row schema of the BigQuery sink's append-only log: one row per event. The table is
 * made from TABLE_FIELDS (./ddl.ts); eventToRow fills one row.
 */

export const TABLE_FIELDS: TableField[] = [
  { name: 'event_id', type: 'STRING', mode: 'REQUIRED', description: 'Event id (stable across re-reads); the insertId.' },
  { name: 'op', type: 'STRING', description: 'insert, update, delete, truncate or read (backfill).' },
  { name: 'source_schema', type: 'STRING' },
  { name: 'source_table', type: 'STRING' },
  { name: 'row_key', type: 'STRING', description: "Canonical JSON of the primary key; '*' for a truncate." },
  { name: 'version', type: 'STRING', description: 'Commit LSN (16 hex) : position (10 digits), or LSN:- for a backfill read (just before that LSN); sorts as text in change order.' },
  { name: 'lsn', type: 'STRING' },
  { name: 'position', type: 'INT64' },
  { name: 'xid', type: 'INT64' },
  { name: 'commit_ts', type: 'TIMESTAMP' },
  { name: 'before', type: 'STRING', description: 'Row before the change, JSON text.' },
  { name: 'after', type: 'STRING', description: 'Row after the change, JSON text (without the unchanged TOAST columns).' },
  { name: 'unchanged', type: 'STRING', mode: 'REPEATED', description: 'Unchanged TOAST columns, absent from after.' },
  { name: 'pipeline', type: 'STRING' },
  { name: 'moved_from', type: 'STRING', description: "On the new key's update of a primary-key change: canonical JSON of the old key, whose row holds the unchanged TOAST columns." },
  { name: 'ingested_at', type: 'TIMESTAMP', description: 'When the sink wrote the row; the first copy of an event wins in the views.' },
];

export interface BigQueryRow {
  event_id: string;
  op: string;
  source_schema: string;
  source_table: string;
  row_key: string;
  version: string;
  lsn: string | null;
  position: number | null;
  xid: number | null;
  commit_ts: string;
  before: string | null;
  after: string | null;
  unchanged: string[];
  pipeline: string;
  moved_from: string | null;
  ingested_at: string;
}

/** The row of one event. JSON columns are canonical JSON (sorted keys), so a re-delivered event gives the same text. */
export function eventToRow(event: ChangeEvent, ingestedAt: Date): BigQueryRow {
  return {
    event_id: event.id,
    op: event.op,
    source_schema: event.schema,
    source_table: event.table,
    row_key: event.key === null ? '*' : canonicalJson(event.key),
    version: eventVersion(event),
    lsn: event.lsn,
    position: event.position ?? null,
    xid: event.xid,
    commit_ts: event.commit_ts,
    before: event.before === null ? null : canonicalJson(event.before),
    after: event.after === null ? null : canonicalJson(event.after),
    unchanged: event.unchanged ?? [],
    pipeline: event.source.pipeline,
    moved_from: event.moved_from ? canonicalJson(event.moved_from) : null,
    ingested_at: ingestedAt.toISOString(),
  };
}
