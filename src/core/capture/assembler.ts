import type { Pgoutput } from 'pg-logical-replication';
import { changeEventId } from '../event/identity.js';
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
    nextPosition: 0,
  };
}

function pick(row: Row, columns: readonly string[]): Row {
  const key: Row = {};
  for (const c of columns) key[c] = row[c];
  return key;
}

function keyOf(relation: Pgoutput.MessageRelation, row: Row): Row {
  // Without key columns (REPLICA IDENTITY FULL on a table with no primary key) the whole row is the identity.
  return relation.keyColumns.length > 0 ? pick(row, relation.keyColumns) : row;
}

/** The events of one row-level or truncate message; empty for anything else. */
export function eventsOf(
  msg: Pgoutput.Message,
  tx: OpenTransaction,
  registry: TypeRegistry,
  source: SourceInfo,
): ChangeEvent[] {
  const make = (
    relation: Pgoutput.MessageRelation,
    op: ChangeEvent['op'],
    key: Row | null,
    before: Row | null,
    after: Row | null,
    unchanged: string[] = [],
  ): ChangeEvent => {
    const position = tx.nextPosition++;
    const event: ChangeEvent = {
      id: changeEventId(tx.commitLsnText, position),
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
      source: { pipeline: source.pipeline, db: source.db, kind: 'cdc', slot: source.slot },
    };
    if (unchanged.length > 0) event.unchanged = unchanged;
    return event;
  };

  switch (msg.tag) {
    case 'insert': {
      const { row } = decodeTuple(msg.relation, msg.new, registry);
      return [make(msg.relation, 'insert', keyOf(msg.relation, row), null, row)];
    }
    case 'update': {
      const after = decodeTuple(msg.relation, msg.new, registry);
      const old = msg.old ?? msg.key;
      const before = old ? decodeTuple(msg.relation, old, registry).row : null;
      return [make(msg.relation, 'update', keyOf(msg.relation, { ...before, ...after.row }), before, after.row, after.unchanged)];
    }
    case 'delete': {
      const old = msg.old ?? msg.key;
      const before = old ? decodeTuple(msg.relation, old, registry).row : null;
      return [make(msg.relation, 'delete', before ? keyOf(msg.relation, before) : {}, before, null)];
    }
    case 'truncate':
      return msg.relations.map((relation) => make(relation, 'truncate', null, null, null));
    default:
      return [];
  }
}
