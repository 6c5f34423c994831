import type { WriteResult } from '../contract.js';
import { classifyCallError, classifyRowError, type CallFailure, type Failure } from './errors.js';
import type { BigQueryRow } from './rows.js';

// Writing: one insertAll per batch, per-row errors mapped, whole-call failures bisected.
// Pure: the call itself is injected (InsertPlan.send), so every path is tested without BigQuery.

/** What insertAll is given: the row and its insertId (the event id). */
export interface InsertRow {
  insertId: string;
  json: BigQueryRow;
  /** `{insertId, json}` as JSON, made once per write (its size cuts the batches; bisection re-sends it as is). */
  encoded?: string;
}

/** Outcome of one insertAll call: per-row errors by index into the rows sent, or the whole call failed. */
export type InsertOutcome =
  | { kind: 'ok'; rowErrors: Map<number, { reason: string; message: string }> }
  | { kind: 'failed'; error: unknown };

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

/**
 * Sends `rows` once and, when BigQuery refused the request for some rows and marked the
 * others 'stopped' (what a request without skipInvalidRows gets: nothing of it is
 * written), sends the stopped ones again at once, without the rows named bad. The
 * outcome is then what skipInvalidRows would have given, for one more call, and only for
 * a batch that holds a bad row. Stopped rows that fail again stay retryable (row_stopped).
 */
export async function sendAgainIfStopped(rows: InsertRow[], send: InsertPlan['send']): Promise<InsertOutcome> {
  const first = await send(rows);
  if (first.kind !== 'ok') return first;
  const stopped = [...first.rowErrors].filter(([, e]) => e.reason === 'stopped').map(([i]) => i);
  // None stopped, or every row stopped (no row named bad): nothing to gain from sending again.
  if (stopped.length === 0 || stopped.length === first.rowErrors.size) return first;
  const again = await send(stopped.map((i) => rows[i]!));
  if (again.kind !== 'ok') return first;
  const rowErrors = new Map(first.rowErrors);
  stopped.forEach((i, j) => {
    const error = again.rowErrors.get(j);
    if (error) rowErrors.set(i, error);
    else rowErrors.delete(i);
  });
  return { kind: 'ok', rowErrors };
}

/** The insertErrors of an insertAll response, by index into the rows sent; the first non-'stopped' reason of a row decides. */
export function outcomeOfResponse(rows: number, response: unknown): InsertOutcome {
  const insertErrors = (response as { insertErrors?: { index?: unknown; errors?: { reason?: string; message?: string }[] }[] } | undefined)?.insertErrors ?? [];
  const rowErrors = new Map<number, { reason: string; message: string }>();
  for (const failed of insertErrors) {
    const index = failed.index;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= rows) {
      return { kind: 'failed', error: new Error(`insertAll answered an error for row index ${String(index)} of ${rows} rows sent`) };
    }
    const errors = failed.errors ?? [];
    const decisive = errors.find((x) => x.reason !== 'stopped') ?? errors[0];
    rowErrors.set(index, { reason: decisive?.reason ?? '', message: decisive?.message ?? 'row rejected' });
  }
  return { kind: 'ok', rowErrors };
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

/** Bisection finds k bad rows among n in about 2·k·log2(n) calls; allow for a few. */
export function bisectBudgetFor(rows: number): number {
  return 8 * Math.max(1, Math.ceil(Math.log2(Math.max(2, rows)))) + 4;
}
