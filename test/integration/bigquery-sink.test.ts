import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BigQuery } from '@google-cloud/bigquery';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import type { BigQuerySinkConfig } from '../../src/core/config/types.js';
import type { SinkRecord } from '../../src/core/sinks/contract.js';
import type { ChangeEvent, Op, Row } from '../../src/core/event/envelope.js';
import { changeEventId } from '../../src/core/event/identity.js';
import { validateEvent } from '../../src/core/event/validate.js';
import { silentLogger } from '../../src/core/logger.js';
import { onceMoreOnReset } from '../../src/core/sinks/bigquery/errors.js';
import { BigQuerySink } from '../../src/core/sinks/bigquery/sink.js';
import { stackConfig, unique } from '../helpers/stack.js';

interface EventOptions {
  before?: Row | null;
  unchanged?: string[];
  xid?: number;
  commit_ts?: string;
}

/** A captured change, valid per the v1 schema, with the id capture would give it. */
function change(op: Op, table: string, key: Row | null, rowAfter: Row | null, lsn: string, position: number, o: EventOptions = {}): ChangeEvent {
  const event: ChangeEvent = {
    id: changeEventId(lsn, position),
    version: 1,
    op,
    schema: 'public',
    table,
    key,
    before: o.before ?? (op === 'delete' ? key : null),
    after: rowAfter,
    ...(o.unchanged ? { unchanged: o.unchanged } : {}),
    lsn,
    position,
    xid: o.xid ?? 700,
    commit_ts: o.commit_ts ?? '2026-11-24T21:00:00.000Z',
    source: { pipeline: 'test', db: 'shop', kind: 'cdc', slot: 'streamctl_test' },
  };
  const v = validateEvent(event);
  assert.ok(v.ok, v.ok ? '' : `${event.id}: ${v.errors.join('; ')}`);
  return event;
}

const records = (events: ChangeEvent[]): SinkRecord[] =>
  events.map((event, i) => ({ event, topic: 'streamctl.changes', partition: 0, offset: String(i) }));

const ok = { ok: true };

describe('BigQuery sink against the emulator', () => {
  let config: BigQuerySinkConfig;
  let bq: BigQuery;
  let sink: BigQuerySink;
  // onceMoreOnReset: after a 500 the emulator closes the kept-alive connection, and the next request on it fails.
  const query = async <T>(sql: string): Promise<T[]> => (await onceMoreOnReset(() => bq.query({ query: sql })))[0] as T[];
  const ref = (name: string): string => `\`${config.projectId}.${config.dataset}.${name}\``;

  before(async () => {
    // batchSize 4: every write below is split into several insertAll calls.
    config = { ...stackConfig().sinks.bigquery, dataset: unique('bqsink'), table: 'changes', viewOnce: 'changes_once', viewLatest: 'latest', batchSize: 4 };
    bq = makeBigQuery(config, { autoRetry: false });
    sink = new BigQuerySink(config, silentLogger, 'test');
    await sink.start();
    await sink.start(); // idempotent: the table is kept, the views are replaced
  });
  after(async () => {
    await sink.stop();
    await onceMoreOnReset(() => bq.dataset(config.dataset).delete({ force: true }));
  });

  it('creates the dataset, the partitioned table and both views', async () => {
    await sink.healthCheck();
    const [metadata] = await bq.dataset(config.dataset).table(config.table).getMetadata();
    assert.deepEqual(metadata.timePartitioning, { type: 'DAY', field: 'commit_ts' });
    const fields = (metadata.schema.fields as { name: string; type: string; mode?: string }[]).map((f) => `${f.name}:${f.type}:${f.mode ?? 'NULLABLE'}`);
    assert.ok(fields.includes('event_id:STRING:REQUIRED'));
    assert.ok(fields.includes('unchanged:STRING:REPEATED'));
    assert.ok(fields.includes('commit_ts:TIMESTAMP:NULLABLE'));
    for (const view of [config.viewOnce, config.viewLatest]) {
      const [m] = await bq.dataset(config.dataset).table(view).getMetadata();
      assert.equal(m.type, 'VIEW', view);
    }
  });

  it('shows each event once and the latest state of every row, through re-delivery, stale updates, deletes, truncates and unchanged TOAST', async () => {
    const history: ChangeEvent[] = [
      // tx 0/1000: first inserts
      change('insert', 'items', { id: 1 }, { id: 1, name: 'a', big: 'X' }, '0/1000', 0),
      change('insert', 'items', { id: 2 }, { id: 2, name: 'b', big: null }, '0/1000', 1),
      change('insert', 'items', { id: 3 }, { id: 3, name: 'c', big: null }, '0/1000', 2),
      change('insert', 'logs', { id: 1 }, { id: 1, line: 'one' }, '0/1000', 3),
      change('insert', 'logs', { id: 2 }, { id: 2, line: 'two' }, '0/1000', 4),
      change('insert', 'items', { id: 4 }, { id: 4, name: 'n0', big: 'B1', doc: { d: 1 } }, '0/1000', 5),
      // tx 0/2000: an update, a delete, a TOAST column changed while another is unchanged
      change('update', 'items', { id: 1 }, { id: 1, name: 'a2', big: 'X' }, '0/2000', 0),
      change('delete', 'items', { id: 2 }, null, '0/2000', 1),
      change('update', 'items', { id: 4 }, { id: 4, name: 'n1', big: 'B2' }, '0/2000', 2, { unchanged: ['doc'] }),
      // tx 0/3000 and 0/4000: updates leaving TOAST values unchanged
      change('update', 'items', { id: 1 }, { id: 1, name: 'a3' }, '0/3000', 0, { unchanged: ['big'] }),
      change('update', 'items', { id: 4 }, { id: 4, name: 'n2' }, '0/3000', 1, { unchanged: ['big', 'doc'] }),
      change('update', 'items', { id: 3 }, { id: 3, name: 'c-new', big: null }, '0/4000', 0),
      // tx 0/5000: truncate logs, then a row written after it in the same transaction
      change('truncate', 'logs', null, null, '0/5000', 0),
      change('insert', 'logs', { id: 3 }, { id: 3, line: 'three' }, '0/5000', 1),
      change('insert', 'logs', { id: 4 }, { id: 4, line: 'four' }, '0/6000', 0),
    ];
    assert.deepEqual(await sink.write(records(history)), history.map(() => ok));

    // A crash before the offsets were committed: the same events again (same ids), in new batches.
    const redelivered = history.slice(5, 12);
    assert.deepEqual(await sink.write(records(redelivered)), redelivered.map(() => ok));
    // A late, older update of row 3 (a backfill read or a replay of an old change) arrives last.
    const stale = change('update', 'items', { id: 3 }, { id: 3, name: 'c-stale', big: null }, '0/2500', 0);
    assert.deepEqual(await sink.write(records([stale])), [ok]);

    const [count] = await query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${ref(config.table)}`);
    assert.equal(Number(count?.n), history.length + redelivered.length + 1, 'the table is an append log: copies stay');

    const once = await query<{ event_id: string; n: number }>(`SELECT event_id, COUNT(*) AS n FROM ${ref(config.viewOnce)} GROUP BY event_id`);
    assert.equal(once.length, history.length + 1);
    assert.ok(once.every((r) => Number(r.n) === 1), 'each event once');
    assert.deepEqual(once.map((r) => r.event_id).sort(), [...history, stale].map((e) => e.id).sort());

    const latest = await query<{ source_table: string; row_key: string; op: string; after: string; unresolved: string[] }>(
      `SELECT source_table, row_key, op, after, unresolved FROM ${ref(config.viewLatest)} ORDER BY source_table, row_key`,
    );
    const state = latest.map((r) => ({ table: r.source_table, key: r.row_key, op: r.op, after: JSON.parse(r.after) as Row, unresolved: r.unresolved }));
    assert.deepEqual(state, [
      // items 1: latest name, 'big' carried from the update before (unchanged TOAST)
      { table: 'items', key: '{"id":1}', op: 'update', after: { id: 1, name: 'a3', big: 'X' }, unresolved: [] },
      // items 2: deleted, absent; items 3: the stale older update did not win
      { table: 'items', key: '{"id":3}', op: 'update', after: { id: 3, name: 'c-new', big: null }, unresolved: [] },
      // items 4: 'big' from 0/2000 (where it changed), 'doc' from the insert (two versions back)
      { table: 'items', key: '{"id":4}', op: 'update', after: { id: 4, name: 'n2', big: 'B2', doc: { d: 1 } }, unresolved: [] },
      // logs: rows 1 and 2 truncated away, rows 3 (same transaction, after the truncate) and 4 present
      { table: 'logs', key: '{"id":3}', op: 'insert', after: { id: 3, line: 'three' }, unresolved: [] },
      { table: 'logs', key: '{"id":4}', op: 'insert', after: { id: 4, line: 'four' }, unresolved: [] },
    ]);
  });

  it('an unchanged TOAST value older than the table holds stays absent and is listed as unresolved', async () => {
    const orphan = change('update', 'docs', { id: 9 }, { id: 9, title: 't' }, '0/7000', 0, { unchanged: ['body'] });
    assert.deepEqual(await sink.write(records([orphan])), [ok]);
    const rows = await query<{ after: string; unresolved: string[] }>(`SELECT after, unresolved FROM ${ref(config.viewLatest)} WHERE source_table = 'docs'`);
    assert.deepEqual(rows.map((r) => [JSON.parse(r.after), r.unresolved]), [[{ id: 9, title: 't' }, ['body']]]);
  });

  it('a batch with rows BigQuery cannot store: those records fail permanently, the others land', async () => {
    const wide = new BigQuerySink({ ...config, batchSize: 500 }, silentLogger, 'test');
    const batch = [
      change('insert', 'bad', { id: 1 }, { id: 1 }, '0/8000', 0),
      // Valid per the envelope schema, but TIMESTAMP holds years 0001-9999 only: the emulator
      // reports it in insertErrors (reason 'invalid'), as BigQuery does.
      change('insert', 'bad', { id: 2 }, { id: 2 }, '0/8000', 1, { commit_ts: '0000-01-01T00:00:00Z' }),
      change('insert', 'bad', { id: 3 }, { id: 3 }, '0/8000', 2),
      // Valid per the schema (an integer), but beyond INT64: the emulator fails the whole
      // insertAll call with a 500, so the sink bisects the batch to find it.
      change('insert', 'bad', { id: 4 }, { id: 4 }, '0/8000', 3, { xid: 2 ** 64 }),
      change('insert', 'bad', { id: 5 }, { id: 5 }, '0/8000', 4),
    ];
    const results = await wide.write(records(batch));
    assert.deepEqual(results.map((r) => (r.ok ? 'ok' : `${r.permanent ? 'permanent' : 'retryable'}:${r.errorClass}`)), [
      'ok',
      'permanent:invalid_row',
      'ok',
      'permanent:invalid_row',
      'ok',
    ]);
    const landed = await query<{ row_key: string }>(`SELECT row_key FROM ${ref(config.table)} WHERE source_table = 'bad' ORDER BY row_key`);
    assert.deepEqual(
      landed.map((r) => r.row_key),
      ['{"id":1}', '{"id":3}', '{"id":5}'],
    );
  });

  it("stores a row's text verbatim, '{{projectId}}' included (the client library's token replacement never reaches rows)", async () => {
    const text = 'deploy to {{projectId}} and {{projectId}}';
    const results = await sink.write(records([change('insert', 'tokens', { id: 1 }, { id: 1, note: text }, '0/9000', 0)]));
    assert.deepEqual(results, [ok]);
    const landed = await query<{ after: string }>(`SELECT after FROM ${ref(config.table)} WHERE source_table = 'tokens'`);
    assert.deepEqual(landed.map((r) => JSON.parse(r.after)), [{ id: 1, note: text }]);
  });
});
