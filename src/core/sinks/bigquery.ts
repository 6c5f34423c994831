import type { BigQuery, Dataset, Table, TableField } from '@google-cloud/bigquery';
import { makeBigQuery } from '../clients/bigquery.js';
import type { BigQuerySinkConfig } from '../config/types.js';
import { eventVersion, type Sink, type SinkRecord, type WriteResult } from '../delivery/sink.js';
import type { ChangeEvent } from '../event/envelope.js';
import { canonicalJson } from '../event/identity.js';
import type { Logger } from '../logger.js';

/**
 * BigQuery sink: an append-only log, one row per event, written with streaming inserts
 * (insertAll, insertId = event id), and two views over it.
 *
 * Exactly once is a property of the views, not of the table: insertId dedup is best
 * effort (about a minute, and the emulator has none), so a crash and a re-delivery may
 * append an event twice. `viewOnce` shows each event id once and `viewLatest` the latest
 * state of each source row, so the sink stores no offsets (`storesOffsets = false`).
 *
 * The table: day partitions on commit_ts, clustered by source table and row key, columns
 * as in TABLE_FIELDS. The views' SQL is built by viewOnceSql() and viewLatestSql() below
 * (exported, so tests and docs show the very text start() installs).
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

/** `project.dataset.table` in backticks, as GoogleSQL wants a qualified name (views need one). */
export function qualifiedName(projectId: string, dataset: string, table: string): string {
  return `\`${projectId}.${dataset}.${table}\``;
}

/**
 * Each event once: the first copy to land (earliest ingested_at) of every event_id.
 *
 *   SELECT * EXCEPT (_copy) FROM (
 *     SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingested_at) AS _copy
 *     FROM `p.d.changes`)
 *   WHERE _copy = 1
 */
export function viewOnceSql(table: string): string {
  return [
    'SELECT * EXCEPT (_copy) FROM (',
    '  SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingested_at) AS _copy',
    `  FROM ${table}`,
    ')',
    'WHERE _copy = 1',
  ].join('\n');
}

/**
 * The latest state of each source row (source_schema, source_table, row_key):
 *
 * - events: each event once (as viewOnceSql, inlined so the view does not depend on the
 *   other view's name);
 * - truncates: per table, the version of its latest truncate; live: the row events of a
 *   table that come after it (a truncate hides every earlier row of its table, and rows
 *   written after it, even in the same transaction, stay);
 * - latest: per row, the live event with the greatest version (event_id breaks a tie);
 *   a row whose latest event is a delete is left out at the end;
 * - unchanged TOAST: PostgreSQL leaves an unchanged TOASTed value out of an update, so the
 *   latest `after` may lack some columns (listed in `unchanged`). For each such column
 *   the view takes its value from the nearest earlier live image of the same row that
 *   carried it (after not null and the column not in its `unchanged`) and appends
 *   `"col":value` to the latest `after` text. A value older than the table's history (or
 *   than a truncate) cannot be found: the column stays absent from `after` and listed in
 *   `unresolved`. The JSON is spliced as text (the last `}` of a canonical object), since
 *   GoogleSQL has no JSON merge; values are read with the JSON subscript operator and a
 *   column name taken from the row (PARSE_JSON(after)[col]), which, unlike a JSONPath,
 *   may be computed. PARSE_JSON uses wide_number_mode 'round' so a number with more
 *   digits than a FLOAT64 holds does not fail the whole view (PostgreSQL int8 and numeric
 *   arrive as strings, so this touches only float columns at their limit).
 * - primary-key changes: the old key's delete (moved_to) hides the old row like any
 *   delete; the new key's update carries `moved_from`. For the new key, images older than
 *   its latest move are another row's (a key used before), so the unchanged columns are
 *   looked up in the new key's images since that move, then in the old key's images
 *   before it (one hop: a column unchanged across two key changes in a row stays
 *   `unresolved`).
 *
 * The columns: those of the table but `before`, with `after` completed, plus `unresolved`.
 */
export function viewLatestSql(table: string): string {
  return `WITH events AS (
  SELECT * EXCEPT (_copy) FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingested_at) AS _copy
    FROM ${table}
  )
  WHERE _copy = 1
),
truncates AS (
  SELECT source_schema, source_table, MAX(version) AS truncated_at
  FROM events
  WHERE op = 'truncate'
  GROUP BY source_schema, source_table
),
live AS (
  SELECT e.*
  FROM events AS e
  LEFT JOIN truncates AS t ON t.source_schema = e.source_schema AND t.source_table = e.source_table
  WHERE e.op != 'truncate' AND (t.truncated_at IS NULL OR e.version > t.truncated_at)
),
latest AS (
  SELECT * EXCEPT (_rank) FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY source_schema, source_table, row_key ORDER BY version DESC, event_id DESC) AS _rank
    FROM live
  )
  WHERE _rank = 1
),
last_move AS (
  SELECT * EXCEPT (_move) FROM (
    SELECT m.source_schema, m.source_table, m.row_key, m.moved_from, m.version AS moved_at,
      ROW_NUMBER() OVER (PARTITION BY m.source_schema, m.source_table, m.row_key ORDER BY m.version DESC) AS _move
    FROM live AS m
    JOIN latest AS l ON l.source_schema = m.source_schema AND l.source_table = m.source_table AND l.row_key = m.row_key
    WHERE m.moved_from IS NOT NULL AND m.version <= l.version
  )
  WHERE _move = 1
),
toast_sources AS (
  SELECT l.source_schema, l.source_table, l.row_key, col, p.after AS source_after,
    ROW_NUMBER() OVER (PARTITION BY l.source_schema, l.source_table, l.row_key, col ORDER BY p.version DESC) AS _nearest
  FROM latest AS l
  CROSS JOIN UNNEST(l.unchanged) AS col
  LEFT JOIN last_move AS m ON m.source_schema = l.source_schema AND m.source_table = l.source_table AND m.row_key = l.row_key
  JOIN live AS p ON p.source_schema = l.source_schema AND p.source_table = l.source_table
    AND ((p.row_key = l.row_key AND p.version < l.version AND (m.moved_at IS NULL OR p.version >= m.moved_at))
      OR (p.row_key = m.moved_from AND p.version < m.moved_at))
  WHERE p.after IS NOT NULL AND col NOT IN UNNEST(p.unchanged)
),
toast AS (
  SELECT source_schema, source_table, row_key,
    STRING_AGG(CONCAT(TO_JSON_STRING(col), ':', COALESCE(TO_JSON_STRING(PARSE_JSON(source_after, wide_number_mode => 'round')[col]), 'null')), ',' ORDER BY col) AS pairs,
    ARRAY_AGG(col ORDER BY col) AS resolved
  FROM toast_sources
  WHERE _nearest = 1
  GROUP BY source_schema, source_table, row_key
)
SELECT
  l.event_id, l.op, l.source_schema, l.source_table, l.row_key, l.version, l.lsn, l.position, l.xid, l.commit_ts,
  CASE
    WHEN x.pairs IS NULL THEN l.after
    WHEN l.after = '{}' THEN CONCAT('{', x.pairs, '}')
    ELSE CONCAT(SUBSTR(l.after, 1, LENGTH(l.after) - 1), ',', x.pairs, '}')
  END AS after,
  l.unchanged,
  ARRAY(SELECT c FROM UNNEST(l.unchanged) AS c WHERE x.resolved IS NULL OR c NOT IN UNNEST(x.resolved)) AS unresolved,
  l.pipeline, l.moved_from, l.ingested_at
FROM latest AS l
LEFT JOIN toast AS x ON x.source_schema = l.source_schema AND x.source_table = l.source_table AND x.row_key = l.row_key
WHERE l.op != 'delete'`;
}

// ---------------------------------------------------------------------------------------
// Writing: one insertAll per batch, per-row errors mapped, whole-call failures bisected.

/** What insertAll is given: the row and its insertId (the event id). */
export interface InsertRow {
  insertId: string;
  json: BigQueryRow;
}

/** Outcome of one insertAll call: per-row errors by index into the rows sent, or the whole call failed. */
export type InsertOutcome =
  | { kind: 'ok'; rowErrors: Map<number, { reason: string; message: string }> }
  | { kind: 'failed'; error: unknown };

export type Failure = Extract<WriteResult, { ok: false }>;

/** How a whole-call failure is handled: the class and whether splitting the batch may isolate a bad row. */
export interface CallFailure {
  failure: Failure;
  /** Splitting can help: the request (or one row in it) was refused, not the service down. */
  bisect: boolean;
  /** For a lone row: the failure says the row itself is bad, without further evidence. */
  rowIsBad: boolean;
}

interface ErrorShape {
  code?: unknown;
  type?: unknown;
  name?: unknown;
  message?: unknown;
  errors?: { reason?: unknown; message?: unknown }[];
  response?: { headers?: Record<string, unknown> };
}

const RETRYABLE_REASONS = new Set(['backendError', 'internalError', 'timeout', 'stopped', 'rateLimitExceeded', 'quotaExceeded']);

/** Maps one insertError reason of one row. */
export function classifyRowError(reason: string, message: string): Failure {
  if (reason === 'invalid') return { ok: false, permanent: true, errorClass: 'invalid_row', message };
  return { ok: false, permanent: false, errorClass: RETRYABLE_REASONS.has(reason) ? `row_${reason}` : `row_${reason || 'error'}`, message };
}

/**
 * Maps an insertAll call that failed as a whole.
 * - 400 (invalid) and 413 (too large): the request was refused; one record alone is
 *   a permanent 'invalid_row'/'row_too_large', more are bisected.
 * - 500: BigQuery's transient internal error, but also how the emulator answers one
 *   badly typed row; bisected, and a lone row is only called bad with more evidence.
 * - ECONNRESET: a reset connection, but also how the emulator answers some bad rows
 *   (it drops the connection); handled as a 500.
 * - 401/403/404 (credentials, permissions, missing table), 408, 429, 502-504, other
 *   network errors and timeouts: retryable, never bisected (the next call fares the same);
 *   a 403 or 404 is not the event's fault, so it opens the circuit rather than fill the DLQ.
 */
export function classifyCallError(error: unknown): CallFailure {
  const e = (typeof error === 'object' && error !== null ? error : {}) as ErrorShape;
  const message = typeof e.message === 'string' ? e.message : String(error);
  const reason = typeof e.errors?.[0]?.reason === 'string' ? e.errors[0].reason : '';
  const retry = (errorClass: string, bisect = false): CallFailure => ({
    failure: { ok: false, permanent: false, errorClass, message },
    bisect,
    rowIsBad: false,
  });
  if (typeof e.code === 'number') {
    const status = e.code;
    if (status === 400) {
      if (reason === 'rateLimitExceeded' || reason === 'quotaExceeded') return retry(`http_400_${reason}`);
      return { failure: { ok: false, permanent: true, errorClass: 'invalid_row', message }, bisect: true, rowIsBad: true };
    }
    if (status === 413) return { failure: { ok: false, permanent: true, errorClass: 'row_too_large', message }, bisect: true, rowIsBad: true };
    if (status === 500) return retry('http_500', true);
    const failure = retry(`http_${status}`);
    if (status === 429 || status === 503) {
      const retryAfter = Number(e.response?.headers?.['retry-after']);
      if (Number.isFinite(retryAfter) && retryAfter >= 0) failure.failure.retryAfterMs = retryAfter * 1000;
    }
    return failure;
  }
  const code = typeof e.code === 'string' ? e.code : '';
  if (code === 'ECONNRESET') return retry('network', true);
  if (code === 'ETIMEDOUT' || e.type === 'request-timeout' || e.name === 'AbortError' || /timed? ?out/i.test(message)) return retry('timeout');
  if (code || e.type === 'system' || e.name === 'FetchError') return retry('network');
  return retry('error');
}

export interface InsertPlan {
  /** Sends one insertAll; never throws (a thrown error is an outcome of kind 'failed'). */
  send(rows: InsertRow[]): Promise<InsertOutcome>;
  /** Calls bisection may add to the first one for a batch; when spent, the rows not yet written are retryable. */
  bisectBudget: number;
}

/**
 * Inserts `rows` in one call and returns one result per row, in order. When the call
 * fails as a whole in a way splitting may help (see classifyCallError), the batch is
 * halved and each half written on its own, down to single rows: good rows land, bad
 * ones are found. A lone row that failed with a 500 or a reset is called bad
 * (permanent 'invalid_row') only when it fails again alone and some other part of the
 * batch was accepted meanwhile; otherwise it stays retryable, since a transient 500
 * looks the same. A non-splittable failure (service down) stops the bisection: every
 * row not yet written gets it.
 */
export async function insertWithBisection(rows: InsertRow[], plan: InsertPlan): Promise<WriteResult[]> {
  const results: (WriteResult | undefined)[] = new Array(rows.length).fill(undefined);
  let budget = plan.bisectBudget;
  let anyAccepted = false;
  let stop: Failure | undefined;
  const suspects: { index: number; failure: CallFailure }[] = [];

  const writeRange = async (from: number, to: number, first: boolean): Promise<void> => {
    if (stop) {
      for (let i = from; i < to; i++) results[i] = stop;
      return;
    }
    const outcome = await plan.send(rows.slice(from, to));
    if (outcome.kind === 'ok') {
      for (let i = from; i < to; i++) {
        const rowError = outcome.rowErrors.get(i - from);
        results[i] = rowError ? classifyRowError(rowError.reason, rowError.message) : { ok: true };
        if (!rowError) anyAccepted = true;
      }
      return;
    }
    const call = classifyCallError(outcome.error);
    const size = to - from;
    if (!call.bisect) {
      stop = call.failure;
      for (let i = from; i < to; i++) results[i] = call.failure;
      return;
    }
    if (size === 1) {
      if (call.rowIsBad) results[from] = call.failure;
      else if (first) results[from] = call.failure;
      else suspects.push({ index: from, failure: call });
      return;
    }
    if (budget < 2) {
      const failure: Failure = { ...call.failure, permanent: false, message: `${call.failure.message} (batch not split further: bisection budget spent)` };
      for (let i = from; i < to; i++) results[i] = failure;
      return;
    }
    budget -= 2;
    const mid = from + Math.ceil(size / 2);
    await writeRange(from, mid, false);
    await writeRange(mid, to, false);
  };

  await writeRange(0, rows.length, true);

  for (const { index, failure } of suspects) {
    if (stop || !anyAccepted || budget < 1) {
      results[index] = failure.failure;
      continue;
    }
    budget--;
    const row = rows[index] as InsertRow;
    const again = await plan.send([row]);
    if (again.kind === 'ok') {
      const rowError = again.rowErrors.get(0);
      results[index] = rowError ? classifyRowError(rowError.reason, rowError.message) : { ok: true };
      continue;
    }
    const call = classifyCallError(again.error);
    results[index] = call.bisect
      ? {
          ok: false,
          permanent: true,
          errorClass: 'invalid_row',
          message: `rejected alone twice (${call.failure.errorClass}: ${call.failure.message}) while the rest of its batch was accepted: taken as a row BigQuery cannot store`,
        }
      : call.failure;
  }
  return results.map((r) => r ?? { ok: false, permanent: false, errorClass: 'error', message: 'no result (bug)' });
}

/** Maps the client's insert() outcome: PartialFailureError carries per-row errors (row = the object sent). */
export function outcomeOf(rows: InsertRow[], error: unknown): InsertOutcome {
  const e = error as { name?: unknown; errors?: { row?: unknown; errors?: { reason?: string; message?: string }[] }[] } | undefined;
  if (e?.name !== 'PartialFailureError' || !Array.isArray(e.errors)) return { kind: 'failed', error };
  const indexOf = new Map<unknown, number>(rows.map((row, i) => [row, i]));
  const byInsertId = new Map<string, number>(rows.map((row, i) => [row.insertId, i]));
  const rowErrors = new Map<number, { reason: string; message: string }>();
  for (const failed of e.errors) {
    const rowRef = failed.row as { insertId?: string } | undefined;
    const index = indexOf.get(failed.row) ?? (rowRef?.insertId !== undefined ? byInsertId.get(rowRef.insertId) : undefined);
    if (index === undefined) return { kind: 'failed', error };
    // A row may carry several errors ('invalid' on the bad field, 'stopped' elsewhere): the first non-'stopped' decides.
    const errors = failed.errors ?? [];
    const decisive = errors.find((x) => x.reason !== 'stopped') ?? errors[0];
    rowErrors.set(index, { reason: decisive?.reason ?? '', message: decisive?.message ?? 'row rejected' });
  }
  return { kind: 'ok', rowErrors };
}

// ---------------------------------------------------------------------------------------

export class BigQuerySink implements Sink {
  readonly name = 'bigquery' as const;
  readonly storesOffsets = false;
  private readonly bq: BigQuery;
  private readonly dataset: Dataset;
  private readonly table: Table;
  private readonly log: Logger;
  private checkTimer: NodeJS.Timeout | undefined;
  private repairing: Promise<boolean> | null = null;
  private readonly historyListeners: Array<(what: string, atStart: boolean) => void> = [];

  constructor(
    private readonly config: BigQuerySinkConfig,
    logger: Logger,
    private readonly pipelineId: string,
    /** How often the table and views are looked for, to recreate one dropped behind the pipeline's back. */
    private readonly checkEveryMs = 60_000,
  ) {
    // The pipeline's retry policy (config.retry) decides; the client must not retry on its own.
    this.bq = makeBigQuery(config, { autoRetry: false });
    this.dataset = this.bq.dataset(config.dataset, { location: config.location });
    this.table = this.dataset.table(config.table);
    this.log = logger.child('sink.bigquery');
  }

  get tableName(): string {
    return qualifiedName(this.config.projectId, this.config.dataset, this.config.table);
  }

  async start(): Promise<void> {
    const [datasetExists] = await onceMoreOnReset(() => this.dataset.exists());
    const [tableExists] = datasetExists ? await onceMoreOnReset(() => this.table.exists()) : [false];
    await this.ensureDataset();
    await this.ensureTable();
    await this.ensureView(this.config.viewOnce, viewOnceSql(this.tableName));
    await this.ensureView(this.config.viewLatest, viewLatestSql(this.tableName));
    // Dropped while stream was stopped, or a new pipeline: the listener tells which (the group's offsets).
    if (!tableExists) for (const listener of this.historyListeners) listener(`table ${this.config.projectId}.${this.config.dataset}.${this.config.table} did not exist when stream started: created empty`, true);
    this.log.info('BigQuery sink ready', {
      table: `${this.config.projectId}.${this.config.dataset}.${this.config.table}`,
      views: [this.config.viewOnce, this.config.viewLatest],
      pipeline: this.pipelineId,
    });
    clearInterval(this.checkTimer);
    this.checkTimer = setInterval(() => void this.repairDropped().catch((err: Error) => this.log.warn('could not check the table and views', { error: err.message })), this.checkEveryMs);
    this.checkTimer.unref();
  }

  /**
   * The table or a view dropped behind the pipeline's back (by hand, by a dataset's table
   * expiration): recreated, saying what history is lost. True when something was recreated.
   * One repair at a time: the periodic check and a write that got 404 may ask together.
   */
  repairDropped(): Promise<boolean> {
    this.repairing ??= this.repairNow().finally(() => (this.repairing = null));
    return this.repairing;
  }

  private async repairNow(): Promise<boolean> {
    const name = (t: string) => `${this.config.projectId}.${this.config.dataset}.${t}`;
    let repaired = false;
    const [datasetExists] = await onceMoreOnReset(() => this.dataset.exists());
    const [tableExists] = datasetExists ? await onceMoreOnReset(() => this.table.exists()) : [false];
    if (!tableExists) {
      await this.ensureDataset();
      await this.ensureTable();
      const what = `table ${name(this.config.table)} was dropped${datasetExists ? '' : ' with its dataset'}: recreated empty`;
      if (this.historyListeners.length === 0) {
        this.log.error(what, {
          lost: 'every event written to it before now: the views show only events delivered from now on',
          fix: 'streamctl backfill --sink bigquery --table <each table> reloads the current rows (their earlier history is gone)',
        });
      }
      // The pipeline replays what the changes topic still holds and says what is gone for good (delivery/replay-retained.ts).
      for (const listener of this.historyListeners) listener(what, false);
      repaired = true;
    }
    for (const [view, sql] of [
      [this.config.viewOnce, viewOnceSql(this.tableName)],
      [this.config.viewLatest, viewLatestSql(this.tableName)],
    ] as const) {
      const [exists] = await onceMoreOnReset(() => this.dataset.table(view).exists());
      if (exists && tableExists) continue;
      await this.ensureView(view, sql);
      if (!exists) this.log.warn(`view ${name(view)} was dropped: recreated`, { lost: 'nothing (a view holds no data)' });
      repaired = true;
    }
    return repaired;
  }

  onHistoryLost(listener: (what: string, atStart: boolean) => void): void {
    this.historyListeners.push(listener);
  }

  write(records: SinkRecord[]): Promise<WriteResult[]> {
    return this.writeRows(records, true);
  }

  private async writeRows(records: SinkRecord[], again: boolean): Promise<WriteResult[]> {
    const ingestedAt = new Date();
    const rows: InsertRow[] = records.map((r) => ({ insertId: r.event.id, json: eventToRow(r.event, ingestedAt) }));
    const size = Math.max(1, this.config.batchSize);
    const results: WriteResult[] = [];
    for (let from = 0; from < rows.length; from += size) {
      const batch = rows.slice(from, from + size);
      const batchResults = await insertWithBisection(batch, { send: (r) => this.send(r), bisectBudget: bisectBudgetFor(batch.length) });
      results.push(...batchResults);
      const first = batchResults[0];
      if (first && !first.ok && !first.permanent && batchResults.every((r) => !r.ok && r.errorClass === first.errorClass) && !first.errorClass.startsWith('row_')) {
        // The whole batch failed the same way (BigQuery unreachable, refusing, throttling): do not hammer it with the rest.
        while (results.length < rows.length) results.push(first);
        break;
      }
    }
    // Every row refused with 404: the table (or its dataset) is gone. Recreate and write once more.
    if (again && results.length > 0 && results.every((r) => !r.ok && r.errorClass === 'http_404') && (await this.repairDropped().catch(() => false))) {
      return this.writeRows(records, false);
    }
    const failed = results.filter((r) => !r.ok).length;
    if (failed > 0) this.log.warn('rows not written', { rows: rows.length, failed, pipeline: this.pipelineId });
    return results;
  }

  async healthCheck(): Promise<void> {
    const [exists] = await onceMoreOnReset(() => this.dataset.exists());
    if (!exists) throw new Error(`dataset ${this.config.projectId}.${this.config.dataset} does not exist`);
  }

  async stop(): Promise<void> {
    // Nothing else held open: every insert is its own HTTP request.
    clearInterval(this.checkTimer);
  }

  private async send(rows: InsertRow[]): Promise<InsertOutcome> {
    try {
      // skipInvalidRows: the valid rows land and each invalid one comes back in insertErrors
      // (without it BigQuery refuses the whole request and marks the good rows 'stopped').
      // partialRetries 0: the client would otherwise re-send failed rows itself, invalid ones too.
      await onceMoreOnReset(() => this.table.insert(rows, { raw: true, skipInvalidRows: true, partialRetries: 0 }));
      return { kind: 'ok', rowErrors: new Map() };
    } catch (error) {
      const outcome = outcomeOf(rows, error);
      if (outcome.kind === 'failed') {
        this.log.debug('insertAll failed as a whole', { rows: rows.length, error: classifyCallError(error).failure.errorClass, message: (error as Error).message });
      }
      return outcome;
    }
  }

  private async ensureDataset(): Promise<void> {
    const [exists] = await this.dataset.exists();
    if (exists) return;
    try {
      await this.dataset.create({ location: this.config.location });
      this.log.info('dataset created', { dataset: this.config.dataset, location: this.config.location });
    } catch (error) {
      if ((error as { code?: unknown }).code !== 409) throw error; // created meanwhile by another deliverer
    }
  }

  private async ensureTable(): Promise<void> {
    const [exists] = await this.table.exists();
    if (exists) {
      const [metadata] = await this.table.getMetadata();
      const fields = (metadata as { schema?: { fields?: TableField[] } }).schema?.fields ?? [];
      const have = new Set(fields.map((f) => f.name));
      const missing = TABLE_FIELDS.filter((f) => !have.has(f.name));
      if (missing.length === 0) return;
      // A table made by an older version lacks newer columns: add them (nullable columns
      // may be added to a table in place); a required one cannot be, so that is reported.
      const addable = missing.every((f) => f.mode !== 'REQUIRED');
      const patched = addable && (await this.table.setMetadata({ schema: { fields: [...fields, ...missing] } }).then(() => true, () => false));
      if (!patched) {
        throw new Error(`table ${this.config.dataset}.${this.config.table} exists without column(s) ${missing.map((f) => f.name).join(', ')}: add them or point sinks.bigquery.table elsewhere`);
      }
      this.log.info('table columns added', { table: this.config.table, columns: missing.map((f) => f.name).join(',') });
      return;
    }
    const schema = { fields: TABLE_FIELDS };
    try {
      await this.dataset.createTable(this.config.table, {
        schema,
        timePartitioning: { type: 'DAY', field: 'commit_ts' },
        clustering: { fields: ['source_schema', 'source_table', 'row_key'] },
      });
      this.log.info('table created', { table: this.config.table, partitioning: 'DAY(commit_ts)' });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 409) return;
      if (code !== 400 && code !== 501) throw error;
      this.log.warn('table could not be created partitioned and clustered; creating it plain', {
        table: this.config.table,
        error: (error as Error).message,
      });
      try {
        await this.dataset.createTable(this.config.table, { schema });
      } catch (plainError) {
        if ((plainError as { code?: unknown }).code !== 409) throw plainError;
      }
    }
  }

  /** Creates the view or replaces its query (a redeploy may change the SQL). */
  private async ensureView(name: string, query: string): Promise<void> {
    const view = this.dataset.table(name);
    const [exists] = await view.exists();
    if (exists) {
      await view.setMetadata({ view: { query, useLegacySql: false } });
      return;
    }
    try {
      await this.dataset.createTable(name, { view: { query, useLegacySql: false } });
    } catch (error) {
      if ((error as { code?: unknown }).code !== 409) throw error;
      await view.setMetadata({ view: { query, useLegacySql: false } });
    }
  }
}

/**
 * Runs `call` again, once, when it failed on a reset connection. The client keeps
 * connections alive; a server that closed one (the emulator closes it after every 500)
 * makes the next request on it fail at once with ECONNRESET ('socket hang up'), before
 * the server saw it. A genuine reset fails twice and is classified then. Re-sending an
 * insert is safe: rows carry their insertId and the views show each event once.
 */
export async function onceMoreOnReset<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== 'ECONNRESET') throw error;
    return call();
  }
}

/** Bisection finds k bad rows among n in about 2·k·log2(n) calls; allow for a few. */
export function bisectBudgetFor(rows: number): number {
  return 8 * Math.max(1, Math.ceil(Math.log2(Math.max(2, rows)))) + 4;
}
