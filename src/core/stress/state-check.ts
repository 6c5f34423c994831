import { parseTableName } from '../backfill/plan.js';
import type { Config } from '../config/index.js';
import { silentLogger } from '../logger.js';
import type { VerifySinkName } from '../verify/sink-side.js';
import { verify, VERIFY_DEFAULTS, type DifferenceKind, type TableSinkResult } from '../verify/verify.js';

/**
 * The final-state check of stress-test: after the drain, `verify` compares the load table
 * in PostgreSQL with each sink that keeps row state (Redis, BigQuery's `latest` view),
 * every column of every row. It complements the per-event counts of the observers
 * (observers.ts), it does not replace them: verify sees the final state only, so it cannot
 * see a duplicate or an event applied out of order that a later one overwrote; the event
 * readers cannot see a column that is wrong while the row's `ev` is right. HTTP keeps no
 * state to compare, so it has the per-event count alone.
 */
export interface StateCheck {
  method: 'verify';
  /** True when PostgreSQL and the sink hold the same rows (no persistent difference). */
  equal: boolean;
  rows_compared: number;
  missing: number;
  extra: number;
  differing: number;
  /** Differences beyond the listed ones: counted, not re-checked (they count as differences). */
  unchecked: number;
  /** Differences that went away once the sink had caught up past the chunk's snapshot. */
  transient: number;
  /** Rows that kept changing through every re-check round (neither equal nor shown different). */
  unsettled: number;
  /** False when a re-check could not wait for the sink to catch up: differences are then unconfirmed. */
  confirmed: boolean;
  /** missing + extra + differing + unchecked: what counts against `loss=0`. */
  persistent: number;
  /** The first few differences, to look at with `streamctl verify --table ...`. */
  examples: Array<{ kind: DifferenceKind; key: string; columns: string[] }>;
  /** The verify pass over the table: every sink is compared in the same pass, so each shows the same time. */
  seconds: number;
}

/** Verify could not give a verdict for the sink (not drained, interrupted, an error): the loss SLO then counts as not measured. */
export interface StateCheckNotRun {
  method: 'verify';
  not_run: string;
}

export type StateCheckResult = StateCheck | StateCheckNotRun;

const EXAMPLES = 5;

export const persistentDifferences = (r: StateCheckResult | null | undefined): number | null =>
  r === null || r === undefined || 'not_run' in r ? null : r.persistent;

/** Runs verify on one table against the given sinks; never throws (a failure is a StateCheckNotRun per sink). */
export async function checkFinalState(config: Config, table: string, sinks: VerifySinkName[], settleTimeoutMs: number, signal: AbortSignal): Promise<Record<string, StateCheckResult>> {
  const out: Record<string, StateCheckResult> = {};
  if (sinks.length === 0) return out;
  try {
    const result = await verify(
      config,
      silentLogger,
      // Differences listed (and re-checked) are capped low: the report shows a few, the counts go on.
      { tables: [parseTableName(table)], sinks, where: null, chunkSize: VERIFY_DEFAULTS.chunkSize, settleTimeoutMs, rounds: VERIFY_DEFAULTS.rounds, maxDifferences: 1000 },
      signal,
    );
    for (const sink of sinks) {
      const r = result.results.find((x) => x.sink === sink);
      out[sink] = r && !result.interrupted ? summarize(r) : { method: 'verify', not_run: 'interrupted before the table was compared' };
    }
  } catch (err) {
    for (const sink of sinks) out[sink] = { method: 'verify', not_run: `verify failed: ${(err as Error).message}` };
  }
  return out;
}

function summarize(r: TableSinkResult): StateCheck {
  return {
    method: 'verify',
    equal: r.equal,
    rows_compared: r.rows_postgres,
    missing: r.missing,
    extra: r.extra,
    differing: r.differing,
    unchecked: r.unchecked,
    transient: r.transient,
    unsettled: r.unsettled,
    confirmed: r.confirmed,
    persistent: r.missing + r.extra + r.differing + r.unchecked,
    examples: r.differences.slice(0, EXAMPLES).map((d) => ({ kind: d.kind, key: d.key, columns: d.columns })),
    seconds: Math.round(r.seconds * 10) / 10,
  };
}
