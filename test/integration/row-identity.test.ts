import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { derivedNames, loadConfig } from '../../src/core/config/index.js';
import { canonicalJson } from '../../src/core/event/index.js';
import { exited } from '../helpers/capturer.js';
import { openEndToEnd, type EndToEnd } from '../helpers/e2e.js';
import { waitFor } from '../helpers/pipeline.js';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';

type Row = Record<string, unknown>;

/**
 * Row identity on the real stack: a REPLICA IDENTITY FULL table with a primary key, and
 * primary-key changes (with an unchanged TOASTed column) under DEFAULT and FULL. Redis and
 * BigQuery `latest` must end equal to PostgreSQL, also after the deliverer is SIGKILLed
 * and every event is delivered again from the start (the sinks' own offsets and the
 * consumer groups removed), in whatever order the partitions come.
 */
describe('row identity: REPLICA IDENTITY FULL and primary-key changes, end to end', { timeout: 300_000 }, () => {
  const full = unique('rif');
  const moved = unique('rim');
  const fullMoved = unique('rifm');
  const bare = unique('rin');
  let e2e: EndToEnd;
  let db: pg.Client;
  let admin: EndToEnd['admin'];
  let redis: EndToEnd['redis'];
  let pipeline: EndToEnd['pipeline'];
  const big = (c: string) => `${c}${'x'.repeat(9000)}`; // TOASTed: over the 2 kB threshold, stored external (STORAGE EXTERNAL below)

  before(async () => {
    e2e = await openEndToEnd([`public.${full}`, `public.${moved}`, `public.${fullMoved}`]);
    ({ db, admin, redis, pipeline } = e2e);
    for (const t of [full, moved, fullMoved]) {
      await db.query(`CREATE TABLE ${t} (id int PRIMARY KEY, name text, doc text)`);
      await db.query(`ALTER TABLE ${t} ALTER COLUMN doc SET STORAGE EXTERNAL`);
    }
    await db.query(`ALTER TABLE ${full} REPLICA IDENTITY FULL`);
    await db.query(`ALTER TABLE ${fullMoved} REPLICA IDENTITY FULL`);
  });

  after(() => e2e.close([full, moved, fullMoved, bare]));

  /** Every row of the tables in PostgreSQL, as `table` -> canonical key -> row. */
  async function postgresRows(): Promise<Map<string, Map<string, Row>>> {
    const out = new Map<string, Map<string, Row>>();
    for (const t of [full, moved, fullMoved]) {
      const { rows } = await db.query<Row>(`SELECT id, name, doc FROM ${t} ORDER BY id`);
      out.set(t, new Map(rows.map((r) => [canonicalJson({ id: r['id'] }), r])));
    }
    return out;
  }

  async function redisRows(t: string): Promise<Map<string, Row>> {
    const prefix = `${pipeline.tag}:row:public.${t}:`;
    const out = new Map<string, Row>();
    for (const key of await redis.keys(`${prefix}*`)) {
      const fields = await redis.hgetall(key);
      out.set(key.slice(prefix.length), Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, JSON.parse(v) as unknown])));
    }
    return out;
  }

  async function latestRows(t: string): Promise<Map<string, Row & { unresolved: string[] }>> {
    const bq = makeBigQuery(loadConfig({ env: pipeline.env }).sinks.bigquery);
    const [rows] = await bq.query({ query: `SELECT row_key, after, unresolved FROM \`${pipeline.tag}.latest\` WHERE source_table = '${t}'` });
    return new Map((rows as Array<{ row_key: string; after: string; unresolved: string[] }>).map((r) => [r.row_key, { ...(JSON.parse(r.after) as Row), unresolved: r.unresolved }]));
  }

  /** '' when the sink equals PostgreSQL, else what differs (first few). */
  function differences(want: Map<string, Row>, got: Map<string, Row>): string {
    const problems: string[] = [];
    for (const [k, row] of want) {
      const have = got.get(k);
      if (!have) problems.push(`${k.slice(0, 40)} missing`);
      else for (const c of ['id', 'name', 'doc']) if (have[c] !== row[c]) problems.push(`${k}.${c}: ${String(have[c]).slice(0, 20)} != ${String(row[c]).slice(0, 20)}`);
      if (have && 'unresolved' in have && (have['unresolved'] as string[]).length > 0) problems.push(`${k} unresolved ${(have['unresolved'] as string[]).join(',')}`);
    }
    for (const k of got.keys()) if (!want.has(k)) problems.push(`${k.slice(0, 40)} should not be there`);
    return problems.slice(0, 6).join('; ');
  }

  async function sinksEqualPostgres(what: string): Promise<void> {
    const want = await postgresRows();
    let last = '';
    await waitFor(
      what,
      async () => {
        for (const [t, rows] of want) {
          last = `redis ${t}: ${differences(rows, await redisRows(t))}`;
          if (!last.endsWith(': ')) return false;
          last = `bigquery ${t}: ${differences(rows, await latestRows(t))}`;
          if (!last.endsWith(': ')) return false;
        }
        return true;
      },
      90_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message} (last difference: ${last})`);
    });
  }

  it('refuses a FULL table without any key at preflight (exit 4, with the fix)', async () => {
    await db.query(`CREATE TABLE ${bare} (a int, b text)`);
    await db.query(`ALTER TABLE ${bare} REPLICA IDENTITY FULL`);
    const env = { ...pipeline.env, STREAMCTL_POSTGRES_TABLES: `public.${bare}`, STREAMCTL_PIPELINE_ID: `${pipeline.tag}_bare` };
    const result = await runCli(['stream', '--role', 'capture'], env);
    assert.equal(result.code, 4, result.stderr);
    assert.match(result.stderr, new RegExp(`table public\\.${bare} has REPLICA IDENTITY FULL and no primary key[^\\n]*ADD PRIMARY KEY`));
    const backfill = await runCli(['backfill', '--table', `public.${bare}`], env);
    assert.equal(backfill.code, 4, backfill.stderr);
    assert.match(backfill.stderr, /REPLICA IDENTITY FULL and no primary key/);
  });

  it('keys a FULL table by its primary key and moves changed keys, in Redis and BigQuery latest', async () => {
    await e2e.startStream();

    for (const t of [full, moved, fullMoved]) {
      await db.query(`INSERT INTO ${t} SELECT g, 'n' || g, $1 || g FROM generate_series(1, 12) g`, [big('d')]);
    }
    // FULL with a primary key: a non-key update, a TOASTed-column update, a delete, then a
    // column added and a delete (the whole-row key of before would no longer match).
    await db.query(`UPDATE ${full} SET name = 'renamed' WHERE id = 1`);
    await db.query(`UPDATE ${full} SET doc = $1 WHERE id = 2`, [big('new')]);
    await db.query(`DELETE FROM ${full} WHERE id = 3`);
    await db.query(`ALTER TABLE ${full} ADD COLUMN extra int DEFAULT 7`);
    await db.query(`DELETE FROM ${full} WHERE id = 4`);
    await db.query(`UPDATE ${full} SET name = 'after-alter' WHERE id = 5`);
    // Primary-key changes: with the TOASTed doc unchanged, with it changed, twice in a row,
    // inside one transaction with the row's insert, and onto a key deleted before.
    for (const t of [moved, fullMoved]) {
      await db.query(`UPDATE ${t} SET id = 101 WHERE id = 1`);
      await db.query(`UPDATE ${t} SET id = 102, doc = $1 WHERE id = 2`, [big('moved')]);
      await db.query(`UPDATE ${t} SET id = 103 WHERE id = 3`);
      await db.query(`UPDATE ${t} SET name = 'then-renamed' WHERE id = 103`);
      await db.query('BEGIN');
      await db.query(`INSERT INTO ${t} VALUES (50, 'fresh', $1)`, [big('fresh')]);
      await db.query(`UPDATE ${t} SET id = 51 WHERE id = 50`);
      await db.query('COMMIT');
      await db.query(`DELETE FROM ${t} WHERE id = 5`);
      await db.query(`UPDATE ${t} SET id = 5 WHERE id = 6`);
      await db.query(`UPDATE ${t} SET id = id + 1000 WHERE id IN (7, 8)`);
    }
    await sinksEqualPostgres('Redis and BigQuery latest to equal PostgreSQL');

    // The key is the primary key: the Kafka record key stays short whatever the row holds.
    const [bigKey] = await redis.keys(`${pipeline.tag}:row:public.${full}:*`);
    assert.ok(bigKey && bigKey.length < 200, `Redis key of a FULL row: ${bigKey?.slice(0, 80)}`);
  });

  it('stays equal after the deliverer is SIGKILLed and every event is delivered again', async () => {
    const config = loadConfig({ env: pipeline.env });
    const names = derivedNames(config);
    e2e.stream!.child.kill('SIGKILL');
    await exited(e2e.stream!.child);
    // Forget every delivery position: the sinks get the whole topic again, each partition
    // at its own pace, over rows they already hold.
    for (const key of await redis.keys(`${pipeline.tag}:offsets:*`)) await redis.del(key);
    await admin.deleteGroups(['redis', 'bigquery', 'http'].map((s) => names.consumerGroup(s))).catch(() => {});
    await db.query(`UPDATE ${moved} SET id = 200 WHERE id = 9`);
    await db.query(`UPDATE ${fullMoved} SET id = 200 WHERE id = 9`);
    await e2e.startStream();
    await sinksEqualPostgres('the sinks to equal PostgreSQL after a re-delivery from the start');
  });

  it('backfills a FULL table with a primary key (same keys as capture)', async () => {
    const result = await runCli(['backfill', '--table', `public.${full}`], pipeline.env);
    assert.equal(result.code, 0, result.stderr);
    await sinksEqualPostgres('the sinks to equal PostgreSQL after the backfill');
  });
});
