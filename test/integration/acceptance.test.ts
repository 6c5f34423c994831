import { type Admin, kafkaClient } from '../../src/core/clients/rdkafka.js';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { makeRedis } from '../../src/core/clients/redis.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { loadConfig } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, startStream, waitFor } from '../helpers/pipeline.js';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';

/**
 * What an operator met using the merged commands together on the real stack (acceptance
 * review of the merge of #10, #11, #12, #14, #15): each test is one such finding.
 */
describe('acceptance: the merged commands as an operator uses them', { timeout: 120_000 }, () => {
  const table = unique('accept');
  const T = `public.${table}`;
  const pipeline = isolatedPipeline([T], 'http://127.0.0.1:9/unused');
  let db: pg.Client;
  let admin: Admin;

  before(async () => {
    const config = loadConfig({ env: pipeline.env });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, name text)`);
    admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
  });

  after(async () => {
    const config = loadConfig({ env: pipeline.env });
    await makeBigQuery(config.sinks.bigquery).dataset(pipeline.tag).delete({ force: true }).catch(() => {});
    const redis = makeRedis(config.sinks.redis, silentLogger);
    await redis.connect();
    const keys = await redis.keys(`${pipeline.tag}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await dropPipeline(db, admin, pipeline.tag);
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`streamctl-${pipeline.tag}-`));
    await admin.deleteGroups(groups).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.disconnect();
  });

  it('verify of a table that does not exist says verify, not backfill (exit 2)', async () => {
    const table = `public.${unique('nosuch')}`;
    const r = await runCli(['verify', '--table', table]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: cannot verify \(1 problem\)$/m);
    assert.match(r.stderr, new RegExp(`table ${table} does not exist`));
    assert.doesNotMatch(r.stderr, /backfill/);
    const json = await runCli(['--json', 'verify', '--table', table]);
    assert.equal(json.code, 2);
    assert.equal((JSON.parse(json.stdout) as { error: { message: string } }).error.message, 'cannot verify (1 problem)');
  });

  it('verify logs no kafkajs partitioner warning when it records its run (an operator reads WARN lines at 3 a.m.)', async () => {
    const r = await runCli(['verify', '--table', T, '--sink', 'redis', '--settle-timeout', '5'], pipeline.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: equal/);
    assert.doesNotMatch(r.stderr, /switched default partitioner/);
  });

  it('backfill and verify of a table stream does not capture (not in postgres.tables) warn that nothing will keep it up to date', async () => {
    const other = unique('uncaptured');
    await db.query(`CREATE TABLE ${other} (id int PRIMARY KEY)`);
    try {
      const verified = await runCli(['verify', '--table', `public.${other}`, '--sink', 'redis', '--settle-timeout', '5'], pipeline.env);
      assert.equal(verified.code, 0, verified.stderr);
      assert.match(verified.stderr, new RegExp(`WARN  verify: table not in postgres\\.tables: .* table=public\\.${other}`));
      const loaded = await runCli(['backfill', '--table', `public.${other}`], pipeline.env);
      assert.equal(loaded.code, 0, loaded.stderr);
      assert.match(loaded.stderr, new RegExp(`WARN  backfill: table not in postgres\\.tables: stream does not capture its changes.* table=public\\.${other}`));
      // A table of the pipeline gets no such warning.
      const own = await runCli(['backfill', '--table', T], pipeline.env);
      assert.equal(own.code, 0, own.stderr);
      assert.doesNotMatch(own.stderr, /not in postgres\.tables/);
    } finally {
      await db.query(`DROP TABLE IF EXISTS ${other}`);
    }
  });

  it('status is not ready (exit 4) when a table of postgres.tables does not exist, as stream would refuse to start', async () => {
    const gone = `public.${unique('gone')}`;
    const env = { ...pipeline.env, STREAMCTL_POSTGRES_TABLES: `${T},${gone}`, STREAMCTL_SINKS_HTTP_ENABLED: 'false' };
    const r = await runCli(['--json', 'status'], env);
    const report = JSON.parse(r.stdout) as { problems: Array<{ component: string; problem: string; fix: string }> };
    assert.equal(r.code, 4, r.stdout);
    assert.deepEqual(report.problems.map((p) => p.problem), [`table ${gone} does not exist`]);
    assert.match(report.problems[0]!.fix, /create it, or remove it from postgres\.tables/);
    const fine = await runCli(['status'], { ...env, STREAMCTL_POSTGRES_TABLES: T });
    assert.equal(fine.code, 0, fine.stdout);
  });

  it("status of one pipeline never shows another pipeline's circuits from a stream on the same metrics port", async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = probe.address() as { port: number };
        probe.close(() => resolve(p));
      });
    });
    const streamEnv = { ...pipeline.env, STREAMCTL_METRICS_PORT: String(port), STREAMCTL_SINKS_HTTP_ENABLED: 'false' };
    const stream = startStream(streamEnv);
    try {
      await waitFor('the stream to serve its metrics', async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).ok, 60_000);
      const own = JSON.parse((await runCli(['--json', 'status'], streamEnv)).stdout) as { circuits: { sinks: Array<{ sink: string }>; error?: string } };
      assert.deepEqual(own.circuits.sinks.map((c) => c.sink).sort(), ['bigquery', 'redis'], own.circuits.error);
      const other = isolatedPipeline([T], 'http://127.0.0.1:9/unused');
      const theirs = JSON.parse((await runCli(['--json', 'status'], { ...other.env, STREAMCTL_METRICS_PORT: String(port), STREAMCTL_SINKS_HTTP_ENABLED: 'false' })).stdout) as {
        circuits: { sinks: unknown[]; error?: string };
      };
      assert.deepEqual(theirs.circuits.sinks, [], 'the circuits shown are those of another pipeline');
      assert.match(theirs.circuits.error ?? '', new RegExp(`pipeline ${pipeline.tag}, not ${other.tag}`));
    } finally {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
  });

  it('a --where that is not valid SQL for the table is a usage error (exit 2) naming --where, for backfill and verify', async () => {
    for (const args of [['backfill', '--table', T], ['verify', '--table', T, '--sink', 'redis']]) {
      const r = await runCli([...args, '--where', 'idd = 1'], pipeline.env);
      assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`--where is not valid for ${T.replace('.', '\\.')} \\(column "idd" does not exist\\)`));
    }
  });
});
