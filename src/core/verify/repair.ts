import { Backfill, type BackfillSummary } from '../backfill/backfill.js';
import { parseTableName, type TableRef } from '../backfill/plan.js';
import { quoteIdent } from '../postgres/sql.js';
import { describeTables } from '../backfill/tables.js';
import { idempotentProducer, kafkaClient, type Kafka } from '../clients/rdkafka.js';
import { makePgClient } from '../clients/postgres.js';
import { derivedNames } from '../config/names.js';
import type { Config } from '../config/types.js';
import { ENVELOPE_VERSION, type ChangeEvent, type Row } from '../event/envelope.js';
import { changeEventId, recordKey } from '../event/identity.js';
import { formatLsn, parseLsn } from '../event/lsn.js';
import type { Logger } from '../logger.js';
import { SESSION_OPTIONS } from '../source/pg-types.js';
import type { RowDifference, VerifyResult } from './verify.js';

/** Longest --where a repair backfill gets: the run's progress (with it) must fit Kafka's 4096-byte offset metadata. */
const MAX_WHERE_BYTES = 3000;

export interface RepairPlan {
  table: string;
  /** Rows to read again through backfill (missing or differing in some sink), by PostgreSQL key text. */
  reread: string[][];
  /** Extra rows (in a sink, gone from PostgreSQL): a delete each, by the event key. */
  deletes: Array<{ key: Row; snapshot: string }>;
  /** Extra rows whose key cannot be turned back into the source key (masked, dropped or renamed key columns). */
  cannot: string[];
}

export interface RepairSummary {
  executed: boolean;
  plans: RepairPlan[];
  backfills: BackfillSummary[];
  deletes_sent: number;
}

/** What --repair would do for each table, from a verify result. */
export function planRepair(config: Config, result: VerifyResult): RepairPlan[] {
  const byTable = new Map<string, { reread: Map<string, string[]>; deletes: Map<string, { key: Row; snapshot: string }>; cannot: Set<string> }>();
  for (const r of result.results) {
    const entry = byTable.get(r.table) ?? { reread: new Map(), deletes: new Map(), cannot: new Set() };
    byTable.set(r.table, entry);
    for (const d of r.differences) {
      if (d.kind === 'extra') {
        const key = sourceKey(config, r.table, d);
        if (key === null) entry.cannot.add(d.key);
        else if (!entry.deletes.has(d.key)) entry.deletes.set(d.key, { key, snapshot: d.snapshot });
      } else if (d.key_text) {
        entry.reread.set(JSON.stringify(d.key_text), d.key_text);
      }
    }
  }
  return [...byTable].map(([table, e]) => ({ table, reread: [...e.reread.values()], deletes: [...e.deletes.values()], cannot: [...e.cannot] }));
}

/**
 * The source key of an extra row, from the sink's key: the enriched key is the source
 * key unless enrichment touched a key column (a mask is one-way; a rename is undone).
 */
function sourceKey(config: Config, table: string, d: RowDifference): Row | null {
  const key = JSON.parse(d.key) as Row;
  const plan = config.enrich.tables[table];
  if (!plan) return key;
  const masked = new Set(plan.mask ?? []);
  const dropped = new Set(plan.drop ?? []);
  const back = new Map(Object.entries(plan.rename ?? {}).map(([from, to]) => [to, from]));
  const out: Row = {};
  for (const [name, value] of Object.entries(key)) {
    const source = back.get(name) ?? name;
    if (masked.has(name) || masked.has(source) || dropped.has(source)) return null;
    out[source] = value;
  }
  return out;
}

/** `(k1, k2) IN (('a', '1'), ...)` batches, each short enough for a backfill run's progress. */
export function keyConditions(keyColumns: readonly string[], keys: readonly string[][]): string[] {
  const cols = `(${keyColumns.map(quoteIdent).join(', ')})`;
  const literal = (v: string) => `'${v.replace(/'/g, "''")}'`;
  const out: string[] = [];
  let tuples: string[] = [];
  let bytes = 0;
  const flush = () => {
    if (tuples.length > 0) out.push(`${cols} IN (${tuples.join(', ')})`);
    tuples = [];
    bytes = 0;
  };
  for (const k of keys) {
    const tuple = `(${k.map(literal).join(', ')})`;
    if (tuple.length + cols.length + 10 > MAX_WHERE_BYTES) throw new RangeError(`a key of ${keyColumns.join(', ')} is too long to repair through backfill (${tuple.length} bytes)`);
    if (bytes + tuple.length + cols.length + 10 > MAX_WHERE_BYTES) flush();
    tuples.push(tuple);
    bytes += tuple.length + 2;
  }
  flush();
  return out;
}

/**
 * A delete for a row PostgreSQL did not have at snapshot C, as the capture path would
 * write one: its version (C - 1, position i) sorts after every change committed before C
 * (WAL records are 8-byte aligned, so no commit record starts at C - 1) and before every
 * change at or after C, so a row re-created after C is never deleted by it. Ids are
 * c-<C - 1>-<i>: no captured change can have that commit LSN, so none shares the id.
 */
export function repairDelete(config: Config, table: string, key: Row, snapshot: string, i: number): ChangeEvent {
  const ref = parseTableName(table);
  const lsn = formatLsn(parseLsn(snapshot) - 1n);
  return {
    id: changeEventId(lsn, i),
    version: ENVELOPE_VERSION,
    op: 'delete',
    schema: ref.schema,
    table: ref.table,
    key,
    before: key,
    after: null,
    lsn,
    position: i,
    xid: null,
    commit_ts: new Date().toISOString(),
    source: { pipeline: config.pipeline.id, db: config.postgres.database, kind: 'cdc', slot: 'streamctl-verify-repair' },
  };
}

/**
 * --repair --execute: differing and missing rows are read again by backfill runs (one per
 * batch of keys, --where on the keys: exact snapshots, versions C:- that never overwrite a
 * newer change, resumable with `streamctl backfill --resume`, --rate), extra rows get a
 * delete through Kafka, so every sink applies both through its own version check.
 */
export async function executeRepair(
  config: Config,
  logger: Logger,
  plans: RepairPlan[],
  options: { rate: number | null },
  signal: AbortSignal,
  onBackfill?: (summary: BackfillSummary) => void,
): Promise<RepairSummary> {
  const summary: RepairSummary = { executed: true, plans, backfills: [], deletes_sent: 0 };
  const pg = makePgClient(config.postgres, { options: SESSION_OPTIONS });
  await pg.connect();
  let kafka: Kafka | null = null;
  try {
    for (const plan of plans) {
      if (signal.aborted) break;
      const ref: TableRef = parseTableName(plan.table);
      const [info] = await describeTables(pg, [ref]);
      for (const where of keyConditions(info!.keyColumns, plan.reread)) {
        if (signal.aborted) break;
        const s = await new Backfill(config, logger).run({ tables: [ref], where, chunkSize: null, rate: options.rate, resume: null }, signal);
        summary.backfills.push(s);
        onBackfill?.(s);
      }
      if (plan.deletes.length > 0 && !signal.aborted) {
        kafka ??= kafkaClient(config.kafka, logger);
        summary.deletes_sent += await sendDeletes(kafka, config, plan);
      }
    }
  } finally {
    await pg.end().catch(() => {});
  }
  return summary;
}

async function sendDeletes(kafka: Kafka, config: Config, plan: RepairPlan): Promise<number> {
  // murmur2 on the record key, as capture partitions: the delete lands in the row's partition.
  const producer = idempotentProducer(kafka);
  await producer.connect();
  try {
    const topic = derivedNames(config).changesTopic;
    const messages = plan.deletes.map((d, i) => {
      const event = repairDelete(config, plan.table, d.key, d.snapshot, i);
      return { key: recordKey(event.schema, event.table, event.key), value: JSON.stringify(event) };
    });
    await producer.send({ topic, messages });
    return messages.length;
  } finally {
    await producer.disconnect().catch(() => {});
  }
}
