import type { BigQuery, Dataset, Table } from '@google-cloud/bigquery';
import { makeBigQuery } from '../../clients/bigquery.js';
import type { Sink, SinkRecord, WriteResult } from '../contract.js';
import type { Logger } from '../../logger.js';
import { bisectBudgetFor, insertWithBisection, outcomeOf, outcomeOfResponse, sendAgainIfStopped, type InsertOutcome, type InsertRow } from './bisection.js';
import type { BigQuerySinkConfig } from './config.js';
import { cutBatches } from './batches.js';
import { ensureDataset, ensureTable, ensureView } from './ddl.js';
import { classifyCallError, onceMoreOnReset } from './errors.js';
import { eventToRow } from './rows.js';
import { qualifiedName, viewLatestSql, viewOnceSql } from './views.js';

/**
 * BigQuery sink: an append-only log, one row per event, written with streaming inserts
 * (insertAll, insertId = event id), and two views over it.
 *
 * Exactly once is a property of the views, not of the table: insertId dedup is best
 * effort (about a minute, and the emulator has none), so a crash and a re-delivery may
 * append an event twice. `viewOnce` shows each event id once and `viewLatest` the latest
 * state of each source row, so the sink stores no offsets (`storesOffsets = false`).
 *
 * The parts, each in its own module: the row schema (./rows.ts), the views' SQL
 * (./views.ts), error classification (./errors.ts), batch bisection (./bisection.ts), the
 * dataset, table and views made idempotently (./ddl.ts). This module wires them to the
 * client and recreates what is dropped behind the pipeline's back.
 */

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
    await ensureDataset(this.dataset, this.config, this.log);
    await ensureTable(this.dataset, this.config, this.log);
    await ensureView(this.dataset, this.config.viewOnce, viewOnceSql(this.tableName));
    await ensureView(this.dataset, this.config.viewLatest, viewLatestSql(this.tableName));
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
      await ensureDataset(this.dataset, this.config, this.log);
      await ensureTable(this.dataset, this.config, this.log);
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
      await ensureView(this.dataset, view, sql);
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
    const rows: Array<InsertRow & { encoded: string }> = records.map((r) => {
      const row = { insertId: r.event.id, json: eventToRow(r.event, ingestedAt) };
      return { ...row, encoded: JSON.stringify(row) };
    });
    const results: WriteResult[] = [];
    for (const [from, to] of cutBatches(rows.map((r) => Buffer.byteLength(r.encoded)), this.config.batchSize)) {
      const batch = rows.slice(from, to);
      const batchResults = await insertWithBisection(batch, { send: (r) => sendAgainIfStopped(r, (again) => this.send(again)), bisectBudget: bisectBudgetFor(batch.length) });
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
    const failures = results.filter((r): r is Extract<WriteResult, { ok: false }> => !r.ok);
    if (failures.length > 0) {
      // Why, in one line: the count per error class and the first failure's words (the DLQ has every one).
      const classes: Record<string, number> = {};
      for (const f of failures) classes[f.errorClass] = (classes[f.errorClass] ?? 0) + 1;
      this.log.warn('rows not written', { rows: rows.length, failed: failures.length, classes, first_error: failures[0]!.message, pipeline: this.pipelineId });
    }
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

  /**
   * One insertAll, without skipInvalidRows first. A request refused whole with a 500 is sent
   * once more with skipInvalidRows: the emulator answers a batch that holds a row it cannot
   * convert with a 500 when skipInvalidRows is off (real BigQuery names the row 'invalid'),
   * and only with it on does it name that row, so the row goes to the DLQ as invalid_row and
   * the others land, as before. On real BigQuery a 500 is a backend error, and the second
   * request is a retry like any other (insertIds keep it from writing a row twice).
   */
  private async send(rows: InsertRow[], skipInvalidRows = false): Promise<InsertOutcome> {
    try {
      const response = await onceMoreOnReset(() => this.insertAll(rows, skipInvalidRows));
      return outcomeOfResponse(rows.length, response);
    } catch (error) {
      const outcome = outcomeOf(rows, error);
      if (outcome.kind === 'failed') {
        const errorClass = classifyCallError(error).failure.errorClass;
        this.log.debug('insertAll failed as a whole', { rows: rows.length, skipInvalidRows, error: errorClass, message: (error as Error).message });
        if (errorClass === 'http_500' && !skipInvalidRows) return this.send(rows, true);
      }
      return outcome;
    }
  }

  /**
   * One tabledata.insertAll request, its body serialized here. Not table.insert(): the
   * client deep-copies every row (extend) and then walks every string of the body to
   * replace '{{projectId}}' tokens (projectify), a third of the sink's CPU per row
   * (bench:bq-sink profile), and it rewrites a row whose data holds the text
   * '{{projectId}}' to the project id. A Buffer body is passed through untouched; the
   * token is escaped in the JSON all the same ('{' as \u007b, the same string once
   * parsed), should a later client version walk buffers too.
   *
   * No skipInvalidRows: a batch holding a bad row is refused whole, BigQuery naming the
   * bad rows ('invalid') and marking the others 'stopped', which sendAgainIfStopped
   * (./bisection.ts) sends again at once; the emulator fails such a batch with a 500, which
   * send() answers by sending it once more with skipInvalidRows. With skipInvalidRows the emulator converts every row on its own
   * before converting the batch: 3-4x its CPU per row (bench:bq-limits --skip-invalid),
   * the limit of this sink on it; real BigQuery charges nothing for either.
   */
  private async insertAll(rows: InsertRow[], skipInvalidRows: boolean): Promise<unknown> {
    const encoded = rows.map((r) => r.encoded ?? JSON.stringify({ insertId: r.insertId, json: r.json }));
    const body = `{${skipInvalidRows ? '"skipInvalidRows":true,' : ''}"rows":[${encoded.join(',')}]}`.replaceAll('{{projectId}}', '\\u007b\\u007bprojectId}}');
    const [response] = await this.table.request({
      method: 'POST',
      uri: '/insertAll',
      body: Buffer.from(body),
      headers: { 'Content-Type': 'application/json' },
    });
    return response;
  }
}
