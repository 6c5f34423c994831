/**
 * How far a backfill run got. Written in the same Kafka transaction as the chunk it
 * covers (a record on the checkpoints topic for people and tools, and the same JSON as
 * transactional offset metadata, which is what a resume reads back: an offset fetch is
 * exact, a read_committed consumer cannot tell it has reached the end of a partition).
 *
 * The run's own definition (tables, where, chunk size) is in it too, so `--resume RUN_ID`
 * needs nothing else.
 */
export interface BackfillProgress {
  v: 1;
  run: string;
  pipeline: string;
  tables: string[];
  where: string | null;
  chunk_size: number;
  /** Index in `tables` of the table in progress; tables.length once the run is done. */
  table_index: number;
  /** Text of the key columns of the last row done in that table; null before its first chunk. */
  last_key: string[] | null;
  /** Rows written per table, aligned with `tables`. */
  rows: number[];
  chunks: number;
  /** Consistent point (LSN) of the last chunk's snapshot. */
  snapshot_lsn: string | null;
  started_at: string;
  updated_at: string;
  /** The only sinks this run is for (`backfill --sink`); null or absent: every sink. */
  sinks?: string[] | null;
  /** `--rate` the run was started with, kept for a resume that does not give one; null: unpaced. */
  rate?: number | null;
}

/** What a run keeps beside its tables for a resume: its target sinks and its pace. */
export interface RunSettings {
  sinks: string[] | null;
  rate: number | null;
}

/** Kafka's default offset.metadata.max.bytes; a longer metadata is refused by the broker. */
export const MAX_PROGRESS_BYTES = 4096;

export function newProgress(
  run: string,
  pipeline: string,
  tables: string[],
  where: string | null,
  chunkSize: number,
  now: Date,
  settings: RunSettings = { sinks: null, rate: null },
): BackfillProgress {
  return {
    sinks: settings.sinks === null ? null : [...settings.sinks],
    rate: settings.rate,
    v: 1,
    run,
    pipeline,
    tables: [...tables],
    where,
    chunk_size: chunkSize,
    table_index: 0,
    last_key: null,
    rows: tables.map(() => 0),
    chunks: 0,
    snapshot_lsn: null,
    started_at: now.toISOString(),
    updated_at: now.toISOString(),
  };
}

export const isDone = (p: BackfillProgress): boolean => p.table_index >= p.tables.length;
export const totalRows = (p: BackfillProgress): number => p.rows.reduce((a, b) => a + b, 0);

/** After a chunk of `rows` rows of the current table, the last of which had key `lastKey`. */
export function afterChunk(p: BackfillProgress, rows: number, lastKey: string[], snapshotLsn: string, now: Date): BackfillProgress {
  if (isDone(p)) throw new Error(`backfill run ${p.run} is already done`);
  const counts = [...p.rows];
  counts[p.table_index] = (counts[p.table_index] ?? 0) + rows;
  return { ...p, last_key: [...lastKey], rows: counts, chunks: p.chunks + 1, snapshot_lsn: snapshotLsn, updated_at: now.toISOString() };
}

/** The current table has no rows left: on to the next (or done). */
export function afterTable(p: BackfillProgress, now: Date): BackfillProgress {
  if (isDone(p)) throw new Error(`backfill run ${p.run} is already done`);
  return { ...p, table_index: p.table_index + 1, last_key: null, updated_at: now.toISOString() };
}

export function encodeProgress(p: BackfillProgress): string {
  const text = JSON.stringify(p);
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_PROGRESS_BYTES) {
    throw new RangeError(
      `backfill progress is ${bytes} bytes, over Kafka's ${MAX_PROGRESS_BYTES}-byte offset metadata limit: shorten --where or back up fewer tables per run (or a very long primary key value)`,
    );
  }
  return text;
}

export function decodeProgress(text: string | null | undefined): BackfillProgress | null {
  if (!text) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`backfill progress in Kafka is not JSON: ${text.slice(0, 200)}`);
  }
  const p = parsed as Partial<BackfillProgress>;
  const ok =
    p.v === 1 &&
    typeof p.run === 'string' &&
    typeof p.pipeline === 'string' &&
    Array.isArray(p.tables) &&
    p.tables.every((t) => typeof t === 'string') &&
    (p.where === null || typeof p.where === 'string') &&
    typeof p.chunk_size === 'number' &&
    typeof p.table_index === 'number' &&
    (p.last_key === null || (Array.isArray(p.last_key) && p.last_key.every((k) => typeof k === 'string'))) &&
    Array.isArray(p.rows) &&
    p.rows.length === p.tables.length &&
    typeof p.chunks === 'number' &&
    typeof p.started_at === 'string' &&
    typeof p.updated_at === 'string';
  if (!ok) throw new Error(`backfill progress in Kafka is malformed: ${text.slice(0, 200)}`);
  return {
    ...(p as BackfillProgress),
    snapshot_lsn: typeof p.snapshot_lsn === 'string' ? p.snapshot_lsn : null,
    // Runs from before these were kept: every sink, unpaced.
    sinks: Array.isArray(p.sinks) && p.sinks.every((s) => typeof s === 'string') ? p.sinks : null,
    rate: typeof p.rate === 'number' && p.rate > 0 ? p.rate : null,
  };
}

/** Run ids are short, sortable by start time and safe in Kafka and PostgreSQL names. */
export function newRunId(now: Date, random: string): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `bf-${stamp}-${random}`;
}
