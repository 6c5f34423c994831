import type { Pgoutput } from 'pg-logical-replication';
import { canonicalJson, changeEventIdPrefix } from '../event/identity.js';
import { ENVELOPE_VERSION, type ChangeEvent, type Row } from '../event/envelope.js';
import { formatLsn, parseLsn } from '../event/lsn.js';
import { decodeTuple, type TypeRegistry } from '../source/pg-types.js';

/**
 * Turns the pgoutput messages of one PostgreSQL transaction into change events, in order,
 * each with its position inside the transaction. Positions count only emitted events, so
 * reading the same transaction again gives the same (commit LSN, position) and so the
 * same event ids.
 */
export interface OpenTransaction {
  commitLsn: bigint;
  commitLsnText: string;
  xid: number;
  commitTs: string;
  /** `changeEventIdPrefix(commitLsn)`: each event's id is this plus its position. */
  idPrefix: string;
  nextPosition: number;
}

export interface SourceInfo {
  pipeline: string;
  db: string;
  slot: string;
}

/** pgoutput gives microseconds since the Unix epoch; keep all six digits. */
export function microsToIso(micros: bigint): string {
  const ms = micros / 1000n;
  const rest = Number(micros % 1000n);
  const iso = new Date(Number(ms)).toISOString(); // ...SS.mmmZ
  return `${iso.slice(0, -1)}${String(rest).padStart(3, '0')}Z`;
}

export function beginTransaction(msg: Pgoutput.MessageBegin): OpenTransaction {
  if (!msg.commitLsn) throw new Error('BEGIN without a commit LSN');
  const commitLsn = parseLsn(msg.commitLsn);
  return {
    commitLsn,
    commitLsnText: formatLsn(commitLsn),
    xid: msg.xid,
    commitTs: microsToIso(msg.commitTime as bigint),
    idPrefix: changeEventIdPrefix(commitLsn),
    nextPosition: 0,
  };
}

function pick(row: Row, columns: readonly string[]): Row {
  const key: Row = {};
  for (const c of columns) key[c] = row[c];
  return key;
}

/** The row's key: its primary key or replica identity index, also under FULL (see row-identity.ts). */
function keyOf(relation: Pgoutput.MessageRelation, row: Row, registry: TypeRegistry): Row {
  return pick(row, registry.identities.keyColumns(relation));
}

const sameKey = (a: Row, b: Row): boolean => canonicalJson(a) === canonicalJson(b);

/**
 * One `source` block per capturer, shared by its events (they never change it): a new
 * object per change was garbage, and the encoder (change-encoder.ts) prints a source it
 * has seen before from its template.
 */
const sources = new WeakMap<SourceInfo, ChangeEvent['source']>();
function sourceBlock(source: SourceInfo): ChangeEvent['source'] {
  let block = sources.get(source);
  if (!block) sources.set(source, (block = { pipeline: source.pipeline, db: source.db, kind: 'cdc', slot: source.slot }));
  return block;
}

/** The events of one row-level or truncate message; empty for anything else. */
export function eventsOf(
  msg: Pgoutput.Message,
  tx: OpenTransaction,
  registry: TypeRegistry,
  source: SourceInfo,
): ChangeEvent[] {
  const sourceOfEvents = sourceBlock(source);
  const make = (
    relation: Pgoutput.MessageRelation,
    op: ChangeEvent['op'],
    key: Row | null,
    before: Row | null,
    after: Row | null,
    unchanged: string[] = [],
    moved?: { to?: Row; from?: Row },
  ): ChangeEvent => {
    const position = tx.nextPosition++;
    const event: ChangeEvent = {
      id: tx.idPrefix + position,
      version: ENVELOPE_VERSION,
      op,
      schema: relation.schema,
      table: relation.name,
      key,
      before,
      after,
      lsn: tx.commitLsnText,
      position,
      xid: tx.xid,
      commit_ts: tx.commitTs,
      source: sourceOfEvents,
    };
    if (unchanged.length > 0) event.unchanged = unchanged;
    if (moved?.to) event.moved_to = moved.to;
    if (moved?.from) event.moved_from = moved.from;
    return event;
  };

  switch (msg.tag) {
    case 'insert': {
      const { row } = decodeTuple(msg.relation, msg.new, registry);
      return [make(msg.relation, 'insert', keyOf(msg.relation, row, registry), null, row)];
    }
    case 'update': {
      // Under FULL the old tuple is whole and the parser already filled the unchanged TOAST
      // values of the new one from it; under DEFAULT they stay listed in `unchanged`.
      const after = decodeTuple(msg.relation, msg.new, registry);
      const old = msg.old ?? msg.key;
      const before = old ? decodeTuple(msg.relation, old, registry).row : null;
      const key = keyOf(msg.relation, { ...before, ...after.row }, registry);
      const oldKey = before ? keyOf(msg.relation, { ...after.row, ...before }, registry) : key;
      if (sameKey(key, oldKey)) return [make(msg.relation, 'update', key, before, after.row, after.unchanged)];
      // A primary-key change: two events, each in its own key's partition. The delete of the
      // old key comes after every earlier change of the old key (same partition), so sinks
      // remove the old row knowing it whole; `moved_to`/`moved_from` tie the two together
      // so a sink can carry the unchanged TOAST values the update does not hold (see
      // schemas/event.v1.schema.json and the Redis script).
      return [
        make(msg.relation, 'delete', oldKey, before, null, [], { to: key }),
        make(msg.relation, 'update', key, before, after.row, after.unchanged, { from: oldKey }),
      ];
    }
    case 'delete': {
      const old = msg.old ?? msg.key;
      const before = old ? decodeTuple(msg.relation, old, registry).row : null;
      return [make(msg.relation, 'delete', before ? keyOf(msg.relation, before, registry) : {}, before, null)];
    }
    case 'truncate':
      return msg.relations.map((relation) => make(relation, 'truncate', null, null, null));
    default:
      return [];
  }
}
