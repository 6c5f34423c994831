import { randomBytes } from 'node:crypto';
import { kafkaClient, type Admin } from '../clients/rdkafka.js';
import type { Config } from '../config/types.js';
import { parseLsn } from '../event/lsn.js';
import { eventVersion } from '../event/version.js';
import { makeEnricher } from '../delivery/enrich.js';
import { secretOf } from '../delivery/deliverer.js';
import { describeTables, estimateRows, type TableInfo } from '../backfill/tables.js';
import { tableText, type TableRef } from '../backfill/plan.js';
import type { Logger } from '../logger.js';
import { waitSinkPast } from './barrier.js';
import { differingColumns, KeyBuckets, lanesEqual, newLanes, rowDigest, xorInto, type Lanes, type StoredFields } from './digest.js';
import { PgSide, type PgRow } from './pg-side.js';
import { RedisSide } from './redis-side.js';
import { openSide } from './sides.js';
import type { SinkSide, VerifySinkName } from './sink-side.js';

export interface VerifyOptions {
  tables: TableRef[];
  sinks: VerifySinkName[];
  /** Only rows matching this SQL condition; the search for extra rows is then skipped (see README). */
  where: string | null;
  chunkSize: number;
  /** How long a re-check waits for a sink to catch up past a chunk's snapshot. */
  settleTimeoutMs: number;
  /** Re-check rounds for a row that keeps changing; after them it is reported unsettled, not different. */
  rounds: number;
  /** Differences kept (listed, re-checked, repairable) per table and sink; the counts go on past it. */
  maxDifferences: number;
}

export const VERIFY_DEFAULTS = { chunkSize: 10_000, settleTimeoutMs: 60_000, rounds: 3, maxDifferences: 10_000 } as const;

export type DifferenceKind = 'missing' | 'extra' | 'differs';

export interface RowDifference {
  kind: DifferenceKind;
  /** Canonical JSON of the row key, as the sink keys the row. */
  key: string;
  /** For 'differs': the columns whose stored value differs (or exists on one side only). */
  columns: string[];
  /** PostgreSQL's text of the key columns (null for an extra row): what a repair re-reads. */
  key_text: string[] | null;
  sink_version: string | null;
  /** Consistent point of the PostgreSQL snapshot the row was last compared in. */
  snapshot: string;
}

export interface TableSinkResult {
  table: string;
  sink: VerifySinkName;
  equal: boolean;
  rows_postgres: number;
  chunks: number;
  chunks_differing: number;
  missing: number;
  extra: number;
  differing: number;
  /** Differences seen in a chunk that were gone once the sink had caught up past the chunk's snapshot. */
  transient: number;
  /** Rows that changed again in every re-check round: neither equal nor shown different. */
  unsettled: number;
  /** Differences beyond maxDifferences: counted, not listed or re-checked. */
  unchecked: number;
  /** False when a re-check could not wait for the sink to catch up (no `stream` running?): differences are then unconfirmed. */
  confirmed: boolean;
  /** Whether extra rows were looked for (not under --where). */
  extras_checked: boolean;
  differences: RowDifference[];
  bytes_postgres: number;
  bytes_sink: number;
  seconds: number;
  rows_per_s: number;
}

export interface VerifyResult {
  run: string;
  started_at: string;
  finished_at: string;
  equal: boolean;
  /** Stopped by the signal before every table was compared. */
  interrupted: boolean;
  results: TableSinkResult[];
  seconds: number;
}

export interface VerifyHooks {
  onTable?(table: string, estimate: number): void;
  onChunk?(table: string, rows: number, differingChunks: number): void;
  onTableDone?(results: TableSinkResult[]): void;
}

/** A row that differed in its chunk, waiting for its re-check. */
interface Candidate {
  key: string;
  pg: PgRow | null;
  snapshot: string;
}

/**
 * `streamctl verify`, as a function other commands can call (stress-test counts loss and
 * duplicates with it). Never prints; returns a structured result.
 *
 * Per table, keyset chunks in key order; per chunk, PostgreSQL's rows (in an exact
 * snapshot, decoded and enriched as the deliverer does) are hashed in Node and each sink
 * hashes the same keys on its side (Redis in a Lua script, BigQuery's `latest` rows in
 * Node). Only a chunk whose count or hash differs is compared row by row. Then one pass
 * over each sink's keys, in 65,536 buckets, finds keys PostgreSQL does not have.
 *
 * A row that differs is re-checked after the sink has caught up past the snapshot it was
 * read in (barrier.ts): if the sink then holds a version older than the snapshot, it has
 * every change before it and must equal the snapshot's row, so a difference is real; if
 * it holds a newer one, the row changed meanwhile and is read again in a new snapshot.
 */
export async function verify(config: Config, logger: Logger, options: VerifyOptions, signal?: AbortSignal, hooks: VerifyHooks = {}): Promise<VerifyResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const run = `vf-${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
  const enrich = makeEnricher(config.enrich, secretOf(config.enrich.maskKey, config.enrich.maskKeyFile), config.pipeline.id);
  const pg = new PgSide(config, enrich);
  const sides: Array<SinkSide<VerifySinkName>> = [];
  const admin = kafkaClient(config.kafka, logger, { retries: 3 }).admin();
  const results: TableSinkResult[] = [];
  let interrupted = false;
  try {
    await pg.connect();
    await admin.connect();
    for (const name of options.sinks) sides.push(await openSide(name, config, logger));
    const infos = await describeTables(pg.client, options.tables, 'verify');
    for (const info of infos) {
      if (signal?.aborted) {
        interrupted = true;
        break;
      }
      const tableResults = await verifyTable(info, { config, logger, pg, sides, admin, options, signal, hooks });
      if (tableResults === null) {
        interrupted = true;
        break;
      }
      results.push(...tableResults);
      hooks.onTableDone?.(tableResults);
    }
  } finally {
    for (const s of sides) await s.close();
    await pg.close();
    await admin.disconnect().catch(() => {});
  }
  return {
    run,
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    equal: !interrupted && results.every((r) => r.equal),
    interrupted,
    results,
    seconds: (performance.now() - started) / 1000,
  };
}

interface TableContext {
  config: Config;
  logger: Logger;
  pg: PgSide;
  sides: Array<SinkSide<VerifySinkName>>;
  admin: Admin;
  options: VerifyOptions;
  signal: AbortSignal | undefined;
  hooks: VerifyHooks;
}

interface SinkState {
  side: SinkSide<VerifySinkName>;
  chunksDiffering: number;
  candidates: Candidate[];
  unchecked: number;
  bytesAtStart: number;
}

/** The version text of a snapshot's consistent point: what a read at C carries (C:-). */
export const snapshotVersion = (lsn: string): string => eventVersion({ lsn, op: 'read' });

async function verifyTable(info: TableInfo, ctx: TableContext): Promise<TableSinkResult[] | null> {
  const { pg, options } = ctx;
  const table = tableText(info.ref);
  const started = performance.now();
  const pgBytesAtStart = pg.bytesRead;
  ctx.hooks.onTable?.(table, await estimateRows(pg.client, info.ref, options.where));
  const states: SinkState[] = ctx.sides.map((side) => ({ side, chunksDiffering: 0, candidates: [], unchecked: 0, bytesAtStart: side.bytesRead }));
  const pgBuckets = new KeyBuckets();
  let afterKey: string[] | null = null;
  let rowsPg = 0;
  let chunks = 0;
  let sinkWork: Promise<void> = Promise.resolve();
  let sinkFailure: unknown = null;

  for (;;) {
    if (ctx.signal?.aborted) return null;
    const { snapshot, rows } = await pg.readChunk(info, afterKey, options.where, options.chunkSize);
    if (rows.length === 0) break;
    chunks++;
    rowsPg += rows.length;
    const keys = rows.map((r) => r.key);
    const lanes = newLanes();
    for (const r of rows) {
      xorInto(lanes, rowDigest(r.key, r.fields));
      pgBuckets.add(r.key);
    }
    // The sinks hash this chunk while PostgreSQL reads the next one (different connections);
    // one chunk's sink work at a time, so a side's per-chunk state (BigQuery's rows) holds.
    await sinkWork;
    if (sinkFailure) throw sinkFailure;
    sinkWork = compareInSinks(table, rows, keys, lanes, snapshot, states, options).catch((err: unknown) => {
      sinkFailure = err;
    });
    ctx.hooks.onChunk?.(table, rowsPg, Math.max(0, ...states.map((s) => s.chunksDiffering)));
    afterKey = rows[rows.length - 1]!.keyText;
    if (rows.length < options.chunkSize) break;
  }
  await sinkWork;
  if (sinkFailure) throw sinkFailure;

  const extrasChecked = options.where === null;
  if (extrasChecked) await findExtras(info, table, pgBuckets, states, ctx);

  const out: TableSinkResult[] = [];
  for (const state of states) {
    if (ctx.signal?.aborted) return null;
    const checked = await recheck(info, table, state, ctx);
    const differences = checked.differences;
    const count = (k: DifferenceKind) => differences.filter((d) => d.kind === k).length;
    const seconds = (performance.now() - started) / 1000;
    out.push({
      table,
      sink: state.side.name,
      equal: differences.length === 0 && state.unchecked === 0,
      rows_postgres: rowsPg,
      chunks,
      chunks_differing: state.chunksDiffering,
      missing: count('missing'),
      extra: count('extra'),
      differing: count('differs'),
      transient: checked.transient,
      unsettled: checked.unsettled,
      unchecked: state.unchecked,
      confirmed: checked.confirmed,
      extras_checked: extrasChecked,
      differences,
      bytes_postgres: pg.bytesRead - pgBytesAtStart,
      bytes_sink: state.side.bytesRead - state.bytesAtStart,
      seconds,
      rows_per_s: seconds > 0 ? rowsPg / seconds : 0,
    });
  }
  return out;
}

/** One chunk on every sink: its digest, and row by row only when count or digest differ. */
async function compareInSinks(table: string, rows: PgRow[], keys: string[], lanes: Lanes, snapshot: string, states: SinkState[], options: VerifyOptions): Promise<void> {
  for (const state of states) {
    const digest = await state.side.chunkDigest(table, keys);
    if (digest.present === rows.length && lanesEqual(digest.lanes, lanes)) continue;
    state.chunksDiffering++;
    const sinkRows = await state.side.fetchRows(table, keys);
    for (const r of rows) {
      const s = sinkRows.get(r.key);
      if (s?.fields && differingColumns(r.fields, s.fields).length === 0) continue;
      addCandidate(state, options, { key: r.key, pg: r, snapshot });
    }
  }
}

function addCandidate(state: SinkState, options: VerifyOptions, c: Candidate): void {
  if (state.candidates.length >= options.maxDifferences) state.unchecked++;
  else state.candidates.push(c);
}

/** Keys a sink holds that PostgreSQL does not: bucket digests first, keys only of buckets that differ. */
async function findExtras(info: TableInfo, table: string, pgBuckets: KeyBuckets, states: SinkState[], ctx: TableContext): Promise<void> {
  const differing = new Map<SinkState, Set<number>>();
  const union = new Set<number>();
  for (const state of states) {
    const buckets = pgBuckets.differing(await state.side.keyBuckets(table));
    if (buckets.size === 0) continue;
    differing.set(state, buckets);
    for (const b of buckets) union.add(b);
  }
  if (union.size === 0) return;
  // PostgreSQL's keys of those buckets, read again in one snapshot: the sinks' keys are compared with it.
  const pgKeys = new Set<string>();
  const snapshot = await ctx.pg.streamKeys(info, null, (k) => {
    if (union.has(KeyBuckets.bucketOfKey(k))) pgKeys.add(k);
  });
  for (const [state, buckets] of differing) {
    for (const k of await state.side.keysInBuckets(table, buckets)) {
      if (!pgKeys.has(k)) addCandidate(state, ctx.options, { key: k, pg: null, snapshot });
    }
  }
}

function compare(key: string, pg: PgRow | null, sink: StoredFields | null): { kind: DifferenceKind; columns: string[] } | null {
  if (pg === null && sink === null) return null;
  if (pg === null) return { kind: 'extra', columns: [] };
  if (sink === null) return { kind: 'missing', columns: [] };
  const columns = differingColumns(pg.fields, sink);
  return columns.length === 0 ? null : { kind: 'differs', columns };
}

/**
 * Re-checks each candidate once the sink is past its snapshot (see verify()). A sink
 * version older than the snapshot then means the sink has applied every change the
 * snapshot saw: the comparison is final. A newer one means the row changed after the
 * snapshot: it is read again in a new snapshot, for at most options.rounds rounds.
 */
async function recheck(
  info: TableInfo,
  table: string,
  state: SinkState,
  ctx: TableContext,
): Promise<{ differences: RowDifference[]; transient: number; unsettled: number; confirmed: boolean }> {
  const differences: RowDifference[] = [];
  let transient = 0;
  let confirmed = true;
  let pending = state.candidates;
  const redis = state.side instanceof RedisSide ? state.side.redisClient : null;
  for (let round = 0; pending.length > 0 && round < ctx.options.rounds; round++) {
    const latest = pending.reduce((max, c) => (parseLsn(c.snapshot) > parseLsn(max) ? c.snapshot : max), pending[0]!.snapshot);
    const caughtUp = await waitSinkPast(latest, state.side.name, { config: ctx.config, pg: ctx.pg.client, admin: ctx.admin, redis }, ctx.options.settleTimeoutMs, ctx.signal);
    const sinkRows = await state.side.fetchRows(table, pending.map((c) => c.key));
    const again: Candidate[] = [];
    for (const c of pending) {
      const s = sinkRows.get(c.key) ?? { fields: null, version: null };
      const newer = s.version !== null && s.version > snapshotVersion(c.snapshot);
      const diff = compare(c.key, c.pg, s.fields);
      if (diff === null) {
        transient++;
        continue;
      }
      if (newer && caughtUp) {
        // Changed after the snapshot: an extra row re-created since is no extra; any other is read again.
        if (c.pg === null) transient++;
        else again.push(c);
        continue;
      }
      if (!caughtUp) confirmed = false;
      differences.push({ kind: diff.kind, key: c.key, columns: diff.columns, key_text: c.pg?.keyText ?? null, sink_version: s.version, snapshot: c.snapshot });
    }
    if (!caughtUp) {
      pending = [];
      break;
    }
    if (again.length === 0) {
      pending = [];
      break;
    }
    const { snapshot, rows } = await ctx.pg.readKeys(info, again.map((c) => c.pg!.keyText));
    // Gone from PostgreSQL by now: compared as absent from here on.
    pending = again.map((c) => ({ key: c.key, pg: rows.get(c.key) ?? null, snapshot }));
  }
  return { differences, transient, unsettled: pending.length, confirmed };
}
