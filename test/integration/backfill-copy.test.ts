import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { copyRowBatches, drainCopy } from '../../src/core/backfill/copy-rows.js';
import { chunkCopy } from '../../src/core/backfill/plan.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { RAW_TEXT_TYPES, SESSION_OPTIONS } from '../../src/core/source/pg-types.js';
import { stackConfig, unique } from '../helpers/stack.js';

/** Rejects when `work` takes longer than `ms`: a connection a COPY still holds never answers. */
const within = <T>(ms: number, what: string, work: Promise<T>): Promise<T> =>
  Promise.race([work, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref())]);

/**
 * Backfill reads each chunk with COPY TO STDOUT (backfill.ts). Against a real PostgreSQL:
 * the rows are exactly what a query gives in array mode with raw-text parsers, and a COPY
 * left half read (a chunk that failed) is read to its end so the connection takes its
 * ROLLBACK; a server error in the middle of a COPY comes out of the loop.
 */
describe('backfill COPY reading', { timeout: 120_000 }, () => {
  const config = stackConfig();
  const table = unique('bfcopy');
  const ref = { schema: 'public', table };
  let db: pg.Client;

  before(async () => {
    db = makePgClient(config.postgres, { options: SESSION_OPTIONS });
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int8 PRIMARY KEY, note text, raw bytea, at timestamptz, tags text[])`);
    await db.query(
      `INSERT INTO ${table} SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE E'tab\\there\\nline \\\\ é ' || repeat('x', g % 300) END,
         decode(md5(g::text), 'hex'), '2026-01-01'::timestamptz + g * interval '1 second', ARRAY['a"b', 'c\\d', NULL]
       FROM generate_series(1, 60000) g`,
    );
  });

  after(async () => {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
  });

  it('gives each row as the query gives it in array mode with raw-text parsers', async () => {
    const want = await db.query({ text: `SELECT * FROM ${table} WHERE id > 100 ORDER BY id LIMIT 3000`, rowMode: 'array', types: RAW_TEXT_TYPES });
    const got: unknown[][] = [];
    for await (const batch of copyRowBatches(db.query(copyTo(chunkCopy(ref, ['id'], ['100'], null, 3000))))) got.push(...batch);
    assert.equal(got.length, 3000);
    assert.deepEqual(got, want.rows);
  });

  it('a COPY left after its first rows is read to its end, and the connection answers the next statement', async () => {
    await db.query('BEGIN');
    const copy = db.query(copyTo(chunkCopy(ref, ['id'], null, null, 60000)));
    copy.on('error', () => {});
    let seen = 0;
    for await (const batch of copyRowBatches(copy)) {
      seen += batch.length;
      break; // what a failed chunk does: it leaves the loop with most of the COPY unread
    }
    assert.ok(seen > 0 && seen < 60000, `read ${seen} rows before leaving`);
    await within(20_000, 'drainCopy', drainCopy(copy));
    await within(20_000, 'ROLLBACK after the COPY', db.query('ROLLBACK'));
    const { rows } = await within(20_000, 'SELECT after the COPY', db.query('SELECT count(*)::int AS n FROM ' + table));
    assert.equal(rows[0].n, 60000);
  });

  it('a server error in the middle of a COPY comes out of the loop, and the connection is usable after', async () => {
    const copy = db.query(copyTo(chunkCopy(ref, ['id'], null, '1 / (id - 40000) IS NOT NULL', 60000)));
    copy.on('error', () => {});
    let seen = 0;
    await assert.rejects(async () => {
      for await (const batch of copyRowBatches(copy)) seen += batch.length;
    }, /division by zero/);
    assert.ok(seen < 40000, `read ${seen} rows`);
    await within(20_000, 'drainCopy after an error', drainCopy(copy));
    const { rows } = await within(20_000, 'SELECT after the error', db.query('SELECT 1 AS one'));
    assert.equal(rows[0].one, 1);
  });
});
