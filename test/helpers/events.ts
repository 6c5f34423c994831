import { changeEventId, type ChangeEvent, type Row } from '../../src/core/event/index.js';

/** A valid captured change, for tests that need events without PostgreSQL. */
export function change(op: ChangeEvent['op'], lsn: string, position: number, key: Row | null, after: Row | null, extra: Partial<ChangeEvent> = {}): ChangeEvent {
  return {
    id: changeEventId(lsn, position),
    version: 1,
    op,
    schema: 'public',
    table: 't',
    key,
    before: op === 'update' || op === 'delete' ? key : null,
    after,
    lsn,
    position,
    xid: 100,
    commit_ts: new Date().toISOString(),
    source: { pipeline: 'test', db: 'db', kind: 'cdc', slot: 's' },
    ...extra,
  };
}
