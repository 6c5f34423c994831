import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultConfig } from '../../src/core/config/index.js';
import type { SinkRecord, WriteResult } from '../../src/core/sinks/contract.js';
import type { ChangeEvent } from '../../src/core/event/envelope.js';
import { backfillEventId, changeEventId } from '../../src/core/event/identity.js';
import { validateEvent } from '../../src/core/event/validate.js';
import { silentLogger } from '../../src/core/logger.js';
import {
  insertWithBisection,
  outcomeOf,
  sendAgainIfStopped,
  type InsertOutcome,
  type InsertRow,
} from '../../src/core/sinks/bigquery/bisection.js';
import { cutBatches, MAX_REQUEST_BYTES } from '../../src/core/sinks/bigquery/batches.js';
import { classifyCallError, classifyRowError } from '../../src/core/sinks/bigquery/errors.js';
import { eventToRow, TABLE_FIELDS } from '../../src/core/sinks/bigquery/rows.js';
import { BigQuerySink } from '../../src/core/sinks/bigquery/sink.js';
import { qualifiedName, viewLatestSql, viewOnceSql } from '../../src/core/sinks/bigquery/views.js';

const AT = new Date('2026-11-24T21:00:05.123Z');

const update = (): ChangeEvent => ({
  id: changeEventId('16/B374D848', 3),
  version: 1,
  op: 'update',
  schema: 'public',
  table: 'orders',
  key: { region: 'eu', id: 7 },
  before: { id: 7, region: 'eu' },
  after: { total: '13.00', id: 7, region: 'eu' },
  unchanged: ['notes'],
  lsn: '16/B374D848',
  position: 3,
  xid: 731,
  commit_ts: '2026-11-24T21:00:00.000Z',
  source: { pipeline: 'default', db: 'shop', kind: 'cdc', slot: 'streamctl_default' },
});

describe('BigQuery sink: event to row', () => {
  it('maps every column of an update', () => {
    const event = update();
    assert.ok(validateEvent(event).ok);
    assert.deepEqual(eventToRow(event, AT), {
      event_id: 'c-00000016B374D848-3',
      op: 'update',
      source_schema: 'public',
      source_table: 'orders',
      row_key: '{"id":7,"region":"eu"}',
      version: '00000016B374D848:0000000003',
      lsn: '16/B374D848',
      position: 3,
      xid: 731,
      commit_ts: '2026-11-24T21:00:00.000Z',
      before: '{"id":7,"region":"eu"}',
      after: '{"id":7,"region":"eu","total":"13.00"}',
      unchanged: ['notes'],
      pipeline: 'default',
      moved_from: null,
      ingested_at: '2026-11-24T21:00:05.123Z',
    });
  });

  it('gives the same row_key and JSON text whatever the column order (a re-delivered event is identical)', () => {
    const a = eventToRow(update(), AT);
    const b = eventToRow({ ...update(), key: { id: 7, region: 'eu' }, after: { region: 'eu', id: 7, total: '13.00' } }, AT);
    assert.equal(a.row_key, b.row_key);
    assert.equal(a.after, b.after);
  });

  it('maps a delete (after null), a truncate (row_key *), an insert without unchanged columns and a backfill read', () => {
    const del = eventToRow({ ...update(), op: 'delete', after: null, unchanged: undefined } as ChangeEvent, AT);
    assert.equal(del.after, null);
    assert.deepEqual(del.unchanged, []);
    const truncate = eventToRow({ ...update(), op: 'truncate', key: null, before: null, after: null }, AT);
    assert.equal(truncate.row_key, '*');
    assert.equal(truncate.before, null);
    const insert = eventToRow({ ...update(), op: 'insert', before: null, unchanged: undefined } as ChangeEvent, AT);
    assert.equal(insert.before, null);
    assert.deepEqual(insert.unchanged, []);
    const read: ChangeEvent = {
      ...update(),
      id: backfillEventId('run1', 'public', 'orders', { id: 7 }),
      op: 'read',
      before: null,
      xid: null,
      lsn: null,
      unchanged: undefined,
      source: { pipeline: 'default', db: 'shop', kind: 'backfill', run: 'run1' },
    } as ChangeEvent;
    delete (read as { position?: number }).position;
    assert.ok(validateEvent(read).ok);
    const row = eventToRow(read, AT);
    assert.equal(row.xid, null);
    assert.equal(row.position, null);
    assert.equal(row.lsn, null);
    assert.equal(row.version, '0000000000000000:-', 'a read sorts before every change at its LSN (here none: lsn null)');
  });

  it('versions sort as text in change order, where LSN text does not', () => {
    const v = (lsn: string, position: number): string => eventToRow({ ...update(), lsn, position }, AT).version;
    const ordered = [v('9/FFFFFFFF', 12), v('A/0', 0), v('A/0', 2), v('A/0', 10), v('10/0', 0), v('FF/1', 0)];
    assert.deepEqual([...ordered].sort(), ordered);
  });

  it('every row column is in the table schema, and the schema is what the views read', () => {
    const names = TABLE_FIELDS.map((f) => f.name);
    assert.deepEqual(Object.keys(eventToRow(update(), AT)).sort(), [...names].sort());
    const mode = (n: string): string | undefined => TABLE_FIELDS.find((f) => f.name === n)?.mode;
    assert.equal(mode('event_id'), 'REQUIRED');
    assert.equal(mode('unchanged'), 'REPEATED');
    assert.equal(TABLE_FIELDS.find((f) => f.name === 'commit_ts')?.type, 'TIMESTAMP');
  });
});

describe('BigQuery sink: view SQL', () => {
  const table = qualifiedName('proj', 'ds', 'changes');

  it('qualifies the table name', () => assert.equal(table, '`proj.ds.changes`'));

  it('viewOnce keeps the first copy of each event id', () => {
    const sql = viewOnceSql(table);
    assert.match(sql, /FROM `proj\.ds\.changes`/);
    assert.match(sql, /ROW_NUMBER\(\) OVER \(PARTITION BY event_id ORDER BY ingested_at\)/);
    assert.match(sql, /WHERE _copy = 1/);
  });

  it('viewLatest dedups, hides rows before a truncate and deleted rows, keeps the greatest version, fills unchanged TOAST', () => {
    const sql = viewLatestSql(table);
    assert.match(sql, /FROM `proj\.ds\.changes`/);
    assert.match(sql, /PARTITION BY event_id ORDER BY ingested_at/, 'each event once first');
    assert.match(sql, /MAX\(version\) AS truncated_at[\s\S]*WHERE op = 'truncate'/);
    assert.match(sql, /e\.version > t\.truncated_at/);
    assert.match(sql, /PARTITION BY source_schema, source_table, row_key ORDER BY version DESC/);
    assert.match(sql, /WHERE l\.op != 'delete'/);
    assert.match(sql, /UNNEST\(l\.unchanged\)/);
    assert.match(sql, /p\.row_key = l\.row_key AND p\.version < l\.version/);
    assert.match(sql, /p\.row_key = m\.moved_from AND p\.version < m\.moved_at/, 'a moved row takes unchanged columns from its old key');
    assert.match(sql, /WHERE p\.after IS NOT NULL AND col NOT IN UNNEST\(p\.unchanged\)/);
    assert.match(sql, /PARSE_JSON\(source_after, wide_number_mode => 'round'\)\[col\]/);
    assert.match(sql, /AS unresolved/);
  });
});

describe('BigQuery sink: error classes', () => {
  const api = (code: number, reason = '', headers: Record<string, string> = {}): unknown =>
    Object.assign(new Error(`HTTP ${code}`), { code, errors: [{ reason, message: 'm' }], response: { headers } });
  const sys = (code: string): unknown => Object.assign(new Error(`request failed, reason: ${code}`), { name: 'FetchError', type: 'system', code });

  it('400 invalid is a permanent invalid row; 413 too; both bisectable', () => {
    assert.deepEqual(classifyCallError(api(400, 'invalid')), {
      failure: { ok: false, permanent: true, errorClass: 'invalid_row', message: 'HTTP 400' },
      bisect: true,
      rowIsBad: true,
    });
    assert.equal(classifyCallError(api(413)).failure.errorClass, 'row_too_large');
  });

  it('500 and a reset connection are retryable but bisectable (the emulator answers a bad row so)', () => {
    for (const e of [api(500, 'internalError'), sys('ECONNRESET')]) {
      const c = classifyCallError(e);
      assert.equal(c.failure.ok, false);
      assert.equal(!c.failure.ok && c.failure.permanent, false);
      assert.equal(c.bisect, true);
      assert.equal(c.rowIsBad, false);
    }
    assert.equal(classifyCallError(api(500)).failure.errorClass, 'http_500');
    assert.equal(classifyCallError(sys('ECONNRESET')).failure.errorClass, 'network');
  });

  it('429, 503, 403, 404, refused connections and timeouts are retryable and never bisected', () => {
    const cases: [unknown, string][] = [
      [api(429, 'rateLimitExceeded', { 'retry-after': '7' }), 'http_429'],
      [api(503, 'backendError'), 'http_503'],
      [api(403, 'accessDenied'), 'http_403'],
      [api(404, 'notFound'), 'http_404'],
      [api(400, 'quotaExceeded'), 'http_400_quotaExceeded'],
      [sys('ECONNREFUSED'), 'network'],
      [sys('ETIMEDOUT'), 'timeout'],
      [Object.assign(new Error('network timeout at: http://x'), { name: 'FetchError', type: 'request-timeout' }), 'timeout'],
    ];
    for (const [error, errorClass] of cases) {
      const c = classifyCallError(error);
      assert.equal(c.bisect, false, errorClass);
      assert.ok(!c.failure.ok && !c.failure.permanent && c.failure.errorClass === errorClass, `${errorClass}: ${JSON.stringify(c)}`);
    }
    const limited = classifyCallError(api(429, 'rateLimitExceeded', { 'retry-after': '7' })).failure;
    assert.equal(!limited.ok && limited.retryAfterMs, 7000);
  });

  it('per-row reasons: invalid is permanent, the rest retryable', () => {
    assert.deepEqual(classifyRowError('invalid', 'bad ts'), { ok: false, permanent: true, errorClass: 'invalid_row', message: 'bad ts' });
    assert.deepEqual(classifyRowError('stopped', 's'), { ok: false, permanent: false, errorClass: 'row_stopped', message: 's' });
    assert.deepEqual(classifyRowError('backendError', 'b'), { ok: false, permanent: false, errorClass: 'row_backendError', message: 'b' });
  });
});

const rowsOf = (n: number): InsertRow[] =>
  Array.from({ length: n }, (_, i) => ({ insertId: `e${i}`, json: eventToRow({ ...update(), id: changeEventId('1/0', i), position: i }, AT) }));

describe('BigQuery sink: mapping a partial failure', () => {
  it('maps insertErrors to rows by the object sent, the first non-stopped reason deciding', () => {
    const rows = rowsOf(3);
    const error = Object.assign(new Error('partial'), {
      name: 'PartialFailureError',
      errors: [
        { row: rows[1], errors: [{ reason: 'stopped', message: 'x' }, { reason: 'invalid', message: 'no such field' }] },
        { row: { insertId: 'e2', json: {} }, errors: [{ reason: 'stopped', message: 'stopped' }] },
      ],
    });
    const outcome = outcomeOf(rows, error);
    assert.equal(outcome.kind, 'ok');
    assert.deepEqual(outcome.kind === 'ok' && [...outcome.rowErrors], [
      [1, { reason: 'invalid', message: 'no such field' }],
      [2, { reason: 'stopped', message: 'stopped' }],
    ]);
    assert.equal(outcomeOf(rows, new Error('boom')).kind, 'failed');
  });
});

describe('BigQuery sink: bisection of a batch refused as a whole', () => {
  const status = (results: WriteResult[]): string[] => results.map((r) => (r.ok ? 'ok' : `${r.permanent ? 'P' : 'R'}:${r.errorClass}`));
  /** A fake insertAll: fails the whole call with `error` when any row of it is in `bad`. */
  const fake = (bad: Set<string>, error: unknown) => {
    const calls: string[][] = [];
    const send = async (rows: InsertRow[]): Promise<InsertOutcome> => {
      calls.push(rows.map((r) => r.insertId));
      return rows.some((r) => bad.has(r.insertId)) ? { kind: 'failed', error } : { kind: 'ok', rowErrors: new Map() };
    };
    return { calls, send };
  };
  const e500 = Object.assign(new Error('An internal error occurred'), { code: 500, errors: [{ reason: 'internalError' }] });
  const e400 = Object.assign(new Error('invalid'), { code: 400, errors: [{ reason: 'invalid' }] });

  it('finds one bad row among 16 (a 500 per call holding it): only that record fails, permanently', async () => {
    const { calls, send } = fake(new Set(['e11']), e500);
    const results = await insertWithBisection(rowsOf(16), { send, bisectBudget: 100 });
    assert.deepEqual(status(results), rowsOf(16).map((r) => (r.insertId === 'e11' ? 'P:invalid_row' : 'ok')));
    assert.ok(calls.length <= 2 * Math.log2(16) + 2, `${calls.length} calls`);
    assert.deepEqual(calls.at(-1), ['e11'], 'the suspect is tried alone once more before it is called bad');
  });

  it('finds two bad rows with a 400', async () => {
    const { send } = fake(new Set(['e0', 'e5']), e400);
    assert.deepEqual(status(await insertWithBisection(rowsOf(6), { send, bisectBudget: 100 })), ['P:invalid_row', 'ok', 'ok', 'ok', 'ok', 'P:invalid_row']);
  });

  it('a lone record with a 500 is retryable; with a 400 permanent', async () => {
    assert.deepEqual(status(await insertWithBisection(rowsOf(1), { send: fake(new Set(['e0']), e500).send, bisectBudget: 100 })), ['R:http_500']);
    assert.deepEqual(status(await insertWithBisection(rowsOf(1), { send: fake(new Set(['e0']), e400).send, bisectBudget: 100 })), ['P:invalid_row']);
  });

  it('500 on every call (BigQuery in trouble, not a row): nothing is called bad, all retryable', async () => {
    const all = new Set(rowsOf(4).map((r) => r.insertId));
    const results = await insertWithBisection(rowsOf(4), { send: fake(all, e500).send, bisectBudget: 100 });
    assert.deepEqual(status(results), ['R:http_500', 'R:http_500', 'R:http_500', 'R:http_500']);
  });

  it('a 503 is not bisected: one call, every record retryable', async () => {
    const e503 = Object.assign(new Error('unavailable'), { code: 503, errors: [{ reason: 'backendError' }] });
    const { calls, send } = fake(new Set(['e0']), e503);
    assert.deepEqual(status(await insertWithBisection(rowsOf(8), { send, bisectBudget: 100 })), Array(8).fill('R:http_503'));
    assert.equal(calls.length, 1);
  });

  it('stops at the budget: the rest stay retryable, never permanent', async () => {
    const { calls, send } = fake(new Set(['e3']), e500);
    const results = await insertWithBisection(rowsOf(64), { send, bisectBudget: 3 });
    assert.ok(calls.length <= 4, `${calls.length} calls`);
    assert.ok(results.every((r) => r.ok || !r.permanent));
    assert.ok(results.some((r) => r.ok), 'the half without the bad row landed');
  });

  it('keeps per-row insertErrors of a sub-call', async () => {
    const send = async (rows: InsertRow[]): Promise<InsertOutcome> =>
      rows.length > 2 ? { kind: 'failed', error: e500 } : { kind: 'ok', rowErrors: new Map(rows.flatMap((r, i) => (r.insertId === 'e2' ? [[i, { reason: 'invalid', message: 'bad' }]] : []))) };
    assert.deepEqual(status(await insertWithBisection(rowsOf(4), { send, bisectBudget: 100 })), ['ok', 'ok', 'P:invalid_row', 'ok']);
  });
});

describe('BigQuery sink: a request refused for a bad row (no skipInvalidRows)', () => {
  // What BigQuery answers such a request: the bad rows 'invalid', every other row 'stopped', nothing written.
  const refusing = (calls: string[][]) => async (rows: InsertRow[]): Promise<InsertOutcome> => {
    calls.push(rows.map((r) => r.insertId));
    const bad = rows.some((r) => r.insertId === 'e1' || r.insertId === 'e3');
    return { kind: 'ok', rowErrors: new Map(bad ? rows.map((r, i) => [i, r.insertId === 'e1' || r.insertId === 'e3' ? { reason: 'invalid', message: 'bad' } : { reason: 'stopped', message: '' }]) : []) };
  };

  it('sends the stopped rows again at once, without the bad ones: they land, the bad ones stay invalid', async () => {
    const calls: string[][] = [];
    const outcome = await sendAgainIfStopped(rowsOf(5), refusing(calls));
    assert.deepEqual(calls, [['e0', 'e1', 'e2', 'e3', 'e4'], ['e0', 'e2', 'e4']]);
    assert.equal(outcome.kind, 'ok');
    assert.deepEqual(outcome.kind === 'ok' ? [...outcome.rowErrors].map(([i, e]) => [i, e.reason]) : null, [[1, 'invalid'], [3, 'invalid']]);
  });

  it('sends once when nothing is stopped, or when every row is (no row named bad)', async () => {
    const calls: string[][] = [];
    await sendAgainIfStopped(rowsOf(3).filter((r) => r.insertId !== 'e1'), refusing(calls));
    const allStopped = await sendAgainIfStopped(rowsOf(2), async () => ({ kind: 'ok', rowErrors: new Map([[0, { reason: 'stopped', message: '' }], [1, { reason: 'stopped', message: '' }]]) }));
    assert.deepEqual(calls, [['e0', 'e2']]);
    assert.equal(allStopped.kind === 'ok' ? allStopped.rowErrors.size : -1, 2);
  });

  it('keeps the stopped rows retryable when the second call fails as a whole', async () => {
    let n = 0;
    const outcome = await sendAgainIfStopped(rowsOf(3), async (rows) => (n++ === 0 ? refusing([])(rows) : { kind: 'failed', error: Object.assign(new Error('down'), { code: 503 }) }));
    assert.deepEqual(outcome.kind === 'ok' ? [...outcome.rowErrors].map(([i, e]) => [i, e.reason]) : null, [[0, 'stopped'], [1, 'invalid'], [2, 'stopped']]);
  });
});

describe('BigQuery sink: cutting a write into insertAll requests', () => {
  it('cuts by rows, every row once and in order', () => {
    assert.deepEqual(cutBatches([10, 10, 10, 10, 10, 10, 10], 3), [[0, 3], [3, 6], [6, 7]]);
    assert.deepEqual(cutBatches([], 3), []);
  });

  it('cuts by bytes (each row and its comma) before a request would pass the cap; a row over it goes alone', () => {
    assert.deepEqual(cutBatches([40, 40, 40, 150, 10, 10], 500, 100), [[0, 2], [2, 3], [3, 4], [4, 6]]);
  });

  it('keeps a request under 10 MB: 500 rows of 1 MiB go 8 to a request', () => {
    const batches = cutBatches(new Array<number>(500).fill(1024 * 1024), 500);
    assert.ok(MAX_REQUEST_BYTES < 10_000_000);
    assert.equal(batches[0]![1] - batches[0]![0], 8);
    assert.equal(batches.reduce((n, [from, to]) => n + to - from, 0), 500);
  });
});

describe('BigQuerySink.write', () => {
  it('splits by batchSize, sends insertId = event id without skipInvalidRows, returns results in order', async () => {
    const config = { ...defaultConfig().sinks.bigquery, batchSize: 3 };
    const sink = new BigQuerySink(config, silentLogger, 'default');
    assert.equal(sink.storesOffsets, false);
    const calls: { body: { rows: InsertRow[] } & Record<string, unknown>; options: Record<string, unknown> }[] = [];
    // The client's Table, replaced: no request leaves the process.
    (sink as unknown as { table: unknown }).table = {
      request: async (options: { body: Buffer } & Record<string, unknown>) => {
        calls.push({ body: JSON.parse(options.body.toString()), options });
        return [{ kind: 'bigquery#tableDataInsertAllResponse' }];
      },
    };
    const records: SinkRecord[] = rowsOf(7).map((_, i) => ({
      event: { ...update(), id: changeEventId('1/0', i), position: i },
      topic: 't',
      partition: 0,
      offset: String(i),
    }));
    const results = await sink.write(records);
    assert.equal(results.length, 7);
    assert.ok(results.every((r) => r.ok));
    assert.deepEqual(
      calls.map((c) => c.body.rows.length),
      [3, 3, 1],
    );
    assert.deepEqual(
      calls.flatMap((c) => c.body.rows.map((r) => r.insertId)),
      records.map((r) => r.event.id),
    );
    assert.ok(calls.every((c) => c.body.rows.every((r) => r.json.event_id === r.insertId)));
    assert.deepEqual(Object.keys(calls[0]!.body), ['rows']);
    assert.deepEqual([calls[0]?.options['method'], calls[0]?.options['uri']], ['POST', '/insertAll']);
  });

  it("maps the response's insertErrors to the records by index, and a batch refused for one row lands the others", async () => {
    const sink = new BigQuerySink({ ...defaultConfig().sinks.bigquery, batchSize: 10 }, silentLogger, 'default');
    const sent: string[][] = [];
    // As BigQuery answers a request without skipInvalidRows holding a bad row: it 'invalid', the rest 'stopped'.
    (sink as unknown as { table: unknown }).table = {
      request: async (options: { body: Buffer }) => {
        const rows = (JSON.parse(options.body.toString()) as { rows: InsertRow[] }).rows;
        sent.push(rows.map((r) => String(r.json.position)));
        const bad = rows.findIndex((r) => r.json.position === 1);
        return [bad < 0 ? {} : { insertErrors: rows.map((_, index) => ({ index, errors: [{ reason: index === bad ? 'invalid' : 'stopped', message: index === bad ? 'no' : '' }] })) }];
      },
    };
    const records: SinkRecord[] = [0, 1, 2].map((i) => ({ event: { ...update(), id: changeEventId('1/0', i), position: i }, topic: 't', partition: 0, offset: String(i) }));
    const results = await sink.write(records);
    assert.deepEqual(results.map((r) => (r.ok ? 'ok' : `${r.permanent ? 'P' : 'R'}:${r.errorClass}`)), ['ok', 'P:invalid_row', 'ok']);
    assert.deepEqual(sent, [['0', '1', '2'], ['0', '2']]);
  });

  it('a request refused whole with a 500 (the emulator, for a row it cannot convert) is sent once more with skipInvalidRows: the bad row is invalid_row, the others land', async () => {
    const sink = new BigQuerySink({ ...defaultConfig().sinks.bigquery, batchSize: 10 }, silentLogger, 'default');
    const sent: { lenient: boolean; rows: string[] }[] = [];
    (sink as unknown as { table: unknown }).table = {
      request: async (options: { body: Buffer }) => {
        const body = JSON.parse(options.body.toString()) as { rows: InsertRow[]; skipInvalidRows?: boolean };
        sent.push({ lenient: body.skipInvalidRows === true, rows: body.rows.map((r) => String(r.json.position)) });
        const bad = body.rows.findIndex((r) => r.json.position === 1);
        if (bad >= 0 && body.skipInvalidRows !== true) throw Object.assign(new Error('Internal Server Error'), { code: 500 });
        return [bad < 0 ? {} : { insertErrors: [{ index: bad, errors: [{ reason: 'invalid', message: 'cannot convert' }] }] }];
      },
    };
    const records: SinkRecord[] = [0, 1, 2].map((i) => ({ event: { ...update(), id: changeEventId('1/0', i), position: i }, topic: 't', partition: 0, offset: String(i) }));
    const results = await sink.write(records);
    assert.deepEqual(results.map((r) => (r.ok ? 'ok' : `${r.permanent ? 'P' : 'R'}:${r.errorClass}`)), ['ok', 'P:invalid_row', 'ok']);
    // lenient: the request carried skipInvalidRows.
    assert.deepEqual(sent, [{ lenient: false, rows: ['0', '1', '2'] }, { lenient: true, rows: ['0', '1', '2'] }]);
  });
});
