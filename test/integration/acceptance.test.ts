import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import type { Admin } from 'kafkajs';
import { makeKafka } from '../../src/core/clients/kafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { loadConfig } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { dropPipeline, isolatedPipeline } from '../helpers/pipeline.js';
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
    admin = makeKafka(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
  });

  after(async () => {
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
});
