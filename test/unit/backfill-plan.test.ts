import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chunkQuery, keyOf, parseTableName, qualified } from '../../src/core/backfill/plan.js';
import { afterChunk, afterTable, decodeProgress, encodeProgress, isDone, MAX_PROGRESS_BYTES, newProgress, newRunId, totalRows } from '../../src/core/backfill/progress.js';
import { RateLimiter } from '../../src/core/backfill/rate-limiter.js';
import { explainSlotError } from '../../src/core/backfill/snapshot.js';
import { EnvironmentNotReadyError } from '../../src/core/errors.js';

describe('backfill table names', () => {
  it('defaults the schema to public and folds unquoted names to lower case, as PostgreSQL does', () => {
    assert.deepEqual(parseTableName('Orders'), { schema: 'public', table: 'orders' });
    assert.deepEqual(parseTableName('sales.Orders'), { schema: 'sales', table: 'orders' });
  });
  it('keeps quoted names as written, "" included', () => {
    assert.deepEqual(parseTableName('"My Schema"."Order ""Lines"""'), { schema: 'My Schema', table: 'Order "Lines"' });
    assert.equal(qualified({ schema: 'My Schema', table: 'Order "Lines"' }), '"My Schema"."Order ""Lines"""');
  });
  it('rejects what is not a table name', () => {
    for (const bad of ['a.b.c', 'a b', 'a.', '"open', 'x;drop table y']) assert.throws(() => parseTableName(bad), RangeError, bad);
  });
});

describe('backfill keyset chunk query', () => {
  const t = { schema: 'public', table: 'orders' };
  it('first chunk: no key condition, ordered by the key, limited', () => {
    assert.deepEqual(chunkQuery(t, ['id'], null, null, 500), { text: 'SELECT * FROM "public"."orders" ORDER BY "id" LIMIT 500', values: [] });
  });
  it('next chunks start after the last key, as untyped text parameters', () => {
    assert.deepEqual(chunkQuery(t, ['id'], ['41'], null, 10), { text: 'SELECT * FROM "public"."orders" WHERE "id" > $1 ORDER BY "id" LIMIT 10', values: ['41'] });
  });
  it('a composite key compares as a row, so the index orders it', () => {
    const q = chunkQuery(t, ['tenant', 'id'], ['a', '7'], null, 10);
    assert.equal(q.text, 'SELECT * FROM "public"."orders" WHERE ("tenant", "id") > ($1, $2) ORDER BY "tenant", "id" LIMIT 10');
    assert.deepEqual(q.values, ['a', '7']);
  });
  it('brackets --where so an OR in it cannot undo the key condition', () => {
    const q = chunkQuery(t, ['id'], ['5'], "status = 'open' OR id < 3", 10);
    assert.equal(q.text, `SELECT * FROM "public"."orders" WHERE "id" > $1 AND (status = 'open' OR id < 3) ORDER BY "id" LIMIT 10`);
  });
  it('refuses a saved key that does not fit the key columns, and a bad limit', () => {
    assert.throws(() => chunkQuery(t, ['a', 'b'], ['1'], null, 10), /primary key change/);
    assert.throws(() => chunkQuery(t, ['id'], null, null, 0), RangeError);
    assert.throws(() => chunkQuery(t, [], null, null, 10), RangeError);
  });
  it('the event key is the key columns of the row', () => {
    assert.deepEqual(keyOf({ tenant: 'a', id: 7, name: 'x' }, ['tenant', 'id']), { tenant: 'a', id: 7 });
  });
});

describe('backfill progress', () => {
  const at = new Date('2026-11-24T10:00:00Z');
  it('moves through chunks and tables to done, counting rows per table', () => {
    let p = newProgress('bf-1', 'pipe', ['public.a', 'public.b'], null, 100, at);
    assert.equal(isDone(p), false);
    p = afterChunk(p, 100, ['100'], '0/10', at);
    p = afterChunk(p, 40, ['140'], '0/20', at);
    assert.deepEqual(p.last_key, ['140']);
    p = afterTable(p, at);
    assert.equal(p.table_index, 1);
    assert.equal(p.last_key, null, 'the next table starts from its beginning');
    p = afterChunk(p, 7, ['x'], '0/30', at);
    p = afterTable(p, at);
    assert.equal(isDone(p), true);
    assert.deepEqual(p.rows, [140, 7]);
    assert.equal(totalRows(p), 147);
    assert.equal(p.chunks, 3);
    assert.throws(() => afterChunk(p, 1, ['y'], '0/40', at), /already done/);
  });
  it('round-trips through its JSON and rejects a malformed one', () => {
    const p = afterChunk(newProgress('bf-1', 'pipe', ['public.a'], "x > 1", 100, at), 3, ['3'], '0/10', at);
    assert.deepEqual(decodeProgress(encodeProgress(p)), p);
    assert.equal(decodeProgress(''), null);
    assert.throws(() => decodeProgress('{"v":1}'), /malformed/);
    assert.throws(() => decodeProgress('nope'), /not JSON/);
  });
  it('refuses progress too long for Kafka offset metadata, saying what to shorten', () => {
    const p = newProgress('bf-1', 'pipe', ['public.a'], 'x'.repeat(MAX_PROGRESS_BYTES), 100, at);
    assert.throws(() => encodeProgress(p), /shorten --where/);
  });
  it('run ids sort by start time and fit the event id rules', () => {
    const id = newRunId(at, 'a1b2c3');
    assert.equal(id, 'bf-20261124T100000Z-a1b2c3');
    assert.match(id, /^[A-Za-z0-9_-]{1,64}$/);
    assert.ok(newRunId(new Date('2026-11-24T10:00:01Z'), '000000') > id);
  });
});

describe('backfill --rate', () => {
  it('the first chunk goes at once; each next one waits rows / rate after the one before', () => {
    const r = new RateLimiter(1000);
    assert.equal(r.waitMs(0), 0);
    r.record(500, 0);
    assert.equal(r.waitMs(100), 400, '500 rows at 1000/s: the next chunk may start at 500 ms');
    assert.equal(r.waitMs(600), 0);
    r.record(1000, 500);
    assert.equal(r.waitMs(700), 800, 'then at 1500 ms');
  });
  it('keeps the average at the rate over many chunks, whatever each chunk took', () => {
    const r = new RateLimiter(250);
    let now = 0;
    let rows = 0;
    for (let i = 0; i < 40; i++) {
      now += r.waitMs(now);
      r.record(100, now);
      rows += 100;
      now += 37; // the chunk's own work
    }
    // 4,000 rows at 250/s: the last chunk starts no earlier than 15.6 s (39 waits of 0.4 s).
    assert.ok(now - 37 >= 15_600, `last chunk started at ${now - 37} ms`);
    assert.ok(rows / ((now - 37) / 1000 + 0.4) <= 250.0001);
  });
  it('does not save up idle time to burst later', () => {
    const r = new RateLimiter(100);
    r.record(100, 0);
    assert.equal(r.waitMs(60_000), 0);
    r.record(100, 60_000);
    assert.equal(r.waitMs(60_000), 1000, 'after a long pause the pace is still 100/s');
  });
  it('under a rate a chunk holds about one second of rows', () => {
    assert.equal(RateLimiter.chunkSizeFor(10_000, null), 10_000);
    assert.equal(RateLimiter.chunkSizeFor(10_000, 2500), 2500);
    assert.equal(RateLimiter.chunkSizeFor(100, 2500), 100);
    assert.equal(RateLimiter.chunkSizeFor(10_000, 0.5), 1);
    assert.throws(() => new RateLimiter(0), RangeError);
  });
});

describe('backfill snapshot slot errors', () => {
  it('name the fix, with exit 4, for each way PostgreSQL refuses the slot', () => {
    const cases: Array<[string, RegExp]> = [
      ['53400', /raise max_replication_slots/],
      ['42501', /ALTER ROLE <user> REPLICATION/],
      ['55000', /wal_level = logical/],
    ];
    for (const [code, fix] of cases) {
      const err = explainSlotError(Object.assign(new Error(`server said ${code}`), { code }));
      assert.ok(err instanceof EnvironmentNotReadyError, code);
      assert.equal((err as EnvironmentNotReadyError).exitCode, 4);
      assert.match((err as EnvironmentNotReadyError).problems.join('\n'), fix);
    }
    const other = new Error('connection reset');
    assert.equal(explainSlotError(other), other, 'anything else passes through');
  });
});
