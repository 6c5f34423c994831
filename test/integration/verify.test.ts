import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { kafkaClient, type Admin } from '../../src/core/clients/rdkafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { makeRedis } from '../../src/core/clients/redis.js';
import { deliveryLag } from '../../src/core/delivery/lag.js';
import { derivedNames, loadConfig, type Config } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import type { TableSinkResult, VerifyResult } from '../../src/core/verify/verify.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, startStream, waitFor } from '../helpers/pipeline.js';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';
import { tempDir } from '../helpers/temp-dir.js';

type VerifyJson = VerifyResult & { ok: boolean; repair?: { executed: boolean; plans: Array<{ reread: string[][]; deletes: unknown[] }> }; after_repair?: VerifyResult };

const resultOf = (v: VerifyResult, sink: string): TableSinkResult => {
  const r = v.results.find((x) => x.sink === sink);
  assert.ok(r, `a result for ${sink}`);
  return r;
};

describe('streamctl verify', { timeout: 600_000 }, () => {
  const table = unique('vf');
  // Enrichment renames `name` to `title` and masks `n`: verify compares the rows as the sinks hold them.
  const configFile = path.join(tempDir('streamctl-verify-'), 'streamctl.yaml');
  writeFileSync(configFile, `enrich:\n  maskKey: "verify-test-mask-key"\n  tables:\n    public.${table}:\n      rename: { name: title }\n      mask: [n]\n`);
  const pipeline = isolatedPipeline([`public.${table}`], 'http://127.0.0.1:1/unused', {
    STREAMCTL_SINKS_HTTP_ENABLED: 'false',
    STREAMCTL_CONFIG: configFile,
  });
  let config: Config;
  let db: pg.Client;
  let admin: Admin;
  let redis: Redis;
  let stream: ReturnType<typeof startStream> | undefined;
  const T = `public.${table}`;
  const rowKey = (id: number) => `${pipeline.tag}:row:${T}:{"id":${id}}`;
  const verifyArgs = ['verify', '--table', T, '--chunk-size', '500', '--settle-timeout', '90', '--json'];
  const run = async (extra: string[] = []) => {
    const r = await runCli([...verifyArgs, ...extra], pipeline.env, 300_000);
    assert.ok(r.stdout.trim().length > 0, `verify printed a result (exit ${r.code}): ${r.stderr.slice(-3000)}`);
    return { code: r.code, json: JSON.parse(r.stdout) as VerifyJson, stderr: r.stderr };
  };
  const bqLog = () => `\`${config.sinks.bigquery.projectId}.${pipeline.tag}.${config.sinks.bigquery.table}\``;

  before(async () => {
    config = loadConfig({ env: pipeline.env });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, name text, n int8, doc jsonb, at timestamptz, tags text[])`);
    await db.query(
      `INSERT INTO ${table} SELECT g, 'name ' || g, g::int8 * 1000000007, jsonb_build_object('g', g), timestamptz '2026-01-01 00:00:00.5+00' + g * interval '1 minute', ARRAY['a', g::text] FROM generate_series(1, 1200) g`,
    );
    admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
    redis = makeRedis(config.sinks.redis, silentLogger);
    await redis.connect();
    stream = startStream(pipeline.env);
    // The rows that existed before the slot: a backfill; then changes through capture.
    const bf = await runCli(['backfill', '--table', T, '--json'], pipeline.env, 120_000);
    assert.equal(bf.code, 0, bf.stderr);
    await db.query(`UPDATE ${table} SET name = 'changed ' || id WHERE id % 7 = 0`);
    await db.query(`DELETE FROM ${table} WHERE id % 50 = 0`);
    await db.query(`INSERT INTO ${table} SELECT g, 'late ' || g, g, NULL, NULL, NULL FROM generate_series(1201, 1300) g`);
    await waitFor('Redis to hold the last insert', async () => (await redis.exists(rowKey(1300))) === 1, 120_000);
    // At rest means both sinks have applied everything: no chunk may then differ, not even transiently.
    await waitFor('both sinks to catch up', async () => {
      const { lag } = await deliveryLag(admin, config);
      return lag.redis === 0 && lag.bigquery === 0;
    }, 180_000);
  });

  after(async () => {
    // A before hook that failed part way must not keep the rest of the clean-up from running.
    if (stream) {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
    const keys = await redis.keys(`${pipeline.tag}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await dropPipeline(db, admin, pipeline.tag);
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`streamctl-${pipeline.tag}-`));
    await admin.deleteGroups(groups).catch(() => {});
    await makeBigQuery(config.sinks.bigquery).dataset(pipeline.tag).delete({ force: true }).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.disconnect();
  });

  it('a pipeline at rest verifies equal against Redis and BigQuery, with rows/s and bytes per side', async () => {
    const { code, json, stderr } = await run();
    const summary = JSON.stringify(json.results.map((r) => ({ ...r, differences: r.differences.slice(0, 5) })));
    assert.equal(code, 0, `${summary}\n${stderr.slice(-2000)}`);
    assert.equal(json.equal, true);
    for (const sink of ['redis', 'bigquery']) {
      const r = resultOf(json, sink);
      assert.equal(r.rows_postgres, 1300 - 24);
      assert.equal(r.chunks, 3);
      assert.equal(r.chunks_differing, 0, `both sides hash alike: no chunk fell back to row by row (${summary})`);
      assert.equal(r.transient, 0);
      assert.equal(r.missing + r.extra + r.differing, 0);
      assert.ok(r.bytes_postgres > 0 && r.bytes_sink > 0);
    }
    const stored = await redis.hgetall(rowKey(3));
    assert.equal(stored['title'], '"name 3"', 'renamed in the sink');
    assert.match(stored['n'] ?? '', /^"hmac-sha256:[0-9a-f]{64}"$/, 'masked in the sink');
  });

  it('finds and names a row changed in Redis, a key deleted from Redis, a row removed from BigQuery and an extra key; a dry run changes nothing; --repair --execute fixes them', async () => {
    await redis.hset(rowKey(10), 'title', JSON.stringify('tampered'));
    await redis.del(rowKey(20));
    await redis.hset(`${pipeline.tag}:row:${T}:{"id":5000}`, 'id', '5000', 'title', '"ghost"');
    await redis.sadd(`${pipeline.tag}:keys:${T}`, `${pipeline.tag}:row:${T}:{"id":5000}`);
    const bq = makeBigQuery(config.sinks.bigquery);
    await bq.query({ query: `DELETE FROM ${bqLog()} WHERE source_table = @t AND row_key = '{"id":30}'`, params: { t: table } });

    const found = await run();
    assert.equal(found.code, 3, found.stderr.slice(-2000));
    assert.equal(found.json.equal, false);
    const r = resultOf(found.json, 'redis');
    const named = (kind: string) => r.differences.filter((d) => d.kind === kind).map((d) => d.key);
    assert.deepEqual(named('differs'), ['{"id":10}']);
    assert.deepEqual(r.differences.find((d) => d.kind === 'differs')!.columns, ['title']);
    assert.deepEqual(named('missing'), ['{"id":20}']);
    assert.deepEqual(named('extra'), ['{"id":5000}']);
    const b = resultOf(found.json, 'bigquery');
    assert.deepEqual(b.differences.map((d) => [d.kind, d.key]), [['missing', '{"id":30}']]);

    const dry = await run(['--repair']);
    assert.equal(dry.code, 3);
    assert.equal(dry.json.repair?.executed, false);
    assert.equal(await redis.hget(rowKey(10), 'title'), '"tampered"', 'a dry run writes nothing');

    const fixed = await run(['--repair', '--execute']);
    assert.equal(fixed.code, 0, `${JSON.stringify(fixed.json.after_repair?.results)}\n${fixed.stderr.slice(-3000)}`);
    assert.equal(fixed.json.after_repair?.equal, true);
    assert.equal(await redis.hget(rowKey(10), 'title'), '"name 10"');
    assert.equal(await redis.exists(rowKey(20)), 1);
    assert.equal(await redis.exists(`${pipeline.tag}:row:${T}:{"id":5000}`), 0);

    const again = await run();
    assert.equal(again.code, 0, again.stderr.slice(-2000));
    assert.equal(again.json.equal, true);

    // status shows the last run of the table.
    const status = await runCli(['status', '--json'], pipeline.env, 60_000);
    const report = JSON.parse(status.stdout) as { verify?: { runs: Array<{ table: string; equal: boolean; run: string }> } };
    const last = report.verify?.runs.find((x) => x.table === T);
    assert.ok(last, status.stdout.slice(0, 2000));
    assert.equal(last.equal, true);
    assert.equal(last.run, again.json.run);
  });

  it('under a steady workload with stream running, 5 runs report no false difference, and a planted one is still found', async () => {
    let stop = false;
    let changes = 0;
    const writer = makePgClient(config.postgres);
    await writer.connect();
    const load = (async () => {
      let i = 0;
      while (!stop) {
        i++;
        const id = 1 + ((i * 37) % 1000);
        await writer.query(`UPDATE ${table} SET name = $2, n = n + 1 WHERE id = $1`, [id, `w${i}`]);
        if (i % 10 === 0) await writer.query(`DELETE FROM ${table} WHERE id = $1`, [id]);
        if (i % 10 === 5) await writer.query(`INSERT INTO ${table} (id, name) VALUES ($1, 'ins') ON CONFLICT (id) DO UPDATE SET name = 'upserted'`, [2000 + (i % 300)]);
        changes++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      let transient = 0;
      for (let k = 0; k < 5; k++) {
        const v = await run();
        assert.equal(v.code, 0, `run ${k + 1}: ${JSON.stringify(v.json.results.map((r) => ({ ...r, differences: r.differences.slice(0, 5) })))}`);
        transient += v.json.results.reduce((n, r) => n + r.transient, 0);
      }
      assert.ok(changes > 100, `the workload ran (${changes} changes)`);
      // A row the workload never touches (ids 1001-1200 are not in its range), changed behind the pipeline's back.
      await redis.hset(rowKey(1111), 'title', JSON.stringify('tampered under load'));
      const v = await run();
      assert.equal(v.code, 3);
      assert.deepEqual(resultOf(v.json, 'redis').differences.map((d) => [d.kind, d.key]), [['differs', '{"id":1111}']]);
      assert.equal(resultOf(v.json, 'bigquery').differences.length, 0);
      console.log(`# 5 runs under load: ${changes} changes during them, ${transient} transient differences re-checked away`);
    } finally {
      stop = true;
      await load;
      await writer.end();
    }
  });
});
