import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { loadConfig } from '../../src/core/config/index.js';
import { exited } from '../helpers/capturer.js';
import { openEndToEnd, type EndToEnd } from '../helpers/e2e.js';
import { waitFor } from '../helpers/pipeline.js';
import { BIN, runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';

interface Stats {
  unique_keys: number;
}

/**
 * `backfill --sink redis`: the rows go into the changes topic like any backfill, with a
 * header naming the sinks they are for; the other sinks' deliverers read past them. The
 * proof waits until every sink's group has read to the end of the topic (lag 0) before it
 * counts what BigQuery and HTTP hold, so "nothing arrived" is not "not arrived yet".
 */
describe('a backfill into one sink only', { timeout: 300_000 }, () => {
  const table = unique('bf1');
  let e2e: EndToEnd;
  const httpStats = async () => (await (await fetch(`http://127.0.0.1:${new URL(e2e.pipeline.env['STREAMCTL_SINKS_HTTP_URL']!).port}/_stats`)).json()) as Stats;
  const bigqueryEvents = async () => {
    const bq = makeBigQuery(loadConfig({ env: e2e.pipeline.env }).sinks.bigquery);
    const [r] = await bq.query({ query: `SELECT op, COUNT(*) AS n FROM \`${e2e.pipeline.tag}.changes_once\` GROUP BY op` });
    return Object.fromEntries((r as Array<{ op: string; n: number }>).map((x) => [x.op, Number(x.n)]));
  };
  const redisRows = () => e2e.redis.scard(`${e2e.pipeline.tag}:keys:public.${table}`);
  const caughtUp = () =>
    waitFor('every sink to read to the end of the changes topic', async () => {
      const r = await runCli(['--json', 'status'], e2e.pipeline.env);
      const lag = (JSON.parse(r.stdout) as { capture: { delivery: { lag: Record<string, number> } | null } }).capture.delivery?.lag ?? {};
      return Object.keys(lag).length === 3 && Object.values(lag).every((n) => n === 0);
    }, 120_000);

  before(async () => {
    e2e = await openEndToEnd([`public.${table}`]);
    await e2e.db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, n int)`);
    // Before the slot exists: no sink sees these rows unless a backfill brings them.
    await e2e.db.query(`INSERT INTO ${table} SELECT g, g FROM generate_series(1, 200) g`);
    await e2e.startStream();
    await e2e.db.query(`INSERT INTO ${table} VALUES (201, 201)`);
    await waitFor('the captured row in every sink', async () => (await redisRows()) === 1 && (await httpStats()).unique_keys === 1 && (await bigqueryEvents())['insert'] === 1, 120_000);
  });

  after(() => e2e.close([table]));

  it('--sink redis changes Redis only: BigQuery and HTTP receive nothing', async () => {
    const r = await runCli(['--json', 'backfill', '--table', `public.${table}`, '--sink', 'redis'], e2e.pipeline.env, 120_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const summary = JSON.parse(r.stdout) as { rowsTotal: number; sinks: string[] };
    assert.equal(summary.rowsTotal, 201);
    assert.deepEqual(summary.sinks, ['redis']);
    await waitFor('201 rows in Redis', async () => (await redisRows()) === 201, 120_000);
    await caughtUp();
    assert.equal((await httpStats()).unique_keys, 1, 'HTTP received none of the backfill');
    assert.deepEqual(await bigqueryEvents(), { insert: 1 }, 'BigQuery received none of the backfill');
  });

  it('--sink is repeatable: --sink http --sink redis reaches both, still not BigQuery', async () => {
    const r = await runCli(['--json', 'backfill', '--table', `public.${table}`, '--sink', 'http', '--sink', 'redis'], e2e.pipeline.env, 120_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await waitFor('the backfill at the HTTP endpoint', async () => (await httpStats()).unique_keys === 1 + 201, 120_000);
    await caughtUp();
    assert.deepEqual(await bigqueryEvents(), { insert: 1 }, 'BigQuery received none of either backfill');
    assert.equal(await redisRows(), 201);
  });

  it('refuses an unknown or disabled --sink, listing each (exit 2)', async () => {
    const r = await runCli(['backfill', '--table', `public.${table}`, '--sink', 'kafka', '--sink', 'http'], { ...e2e.pipeline.env, STREAMCTL_SINKS_HTTP_ENABLED: 'false' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--sink kafka: unknown sink/);
    assert.match(r.stderr, /--sink http: that sink is disabled/);
  });

  it('a resumed run keeps its --rate and its --sink unless told another rate', async () => {
    // Paced at 20 rows/s, 201 rows take at least 9 s whatever the machine: the stop lands mid-run.
    const first = spawn(process.execPath, [BIN, 'backfill', '--table', `public.${table}`, '--sink', 'redis', '--rate', '20'], { env: { ...process.env, ...e2e.pipeline.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    first.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const run = await waitFor('the run to start', async () => /backfill run started.*run=(bf-\S+)/.exec(log)?.[1], 60_000);
    assert.match(log, /rate=20\b/);
    first.kill('SIGINT');
    assert.equal(await exited(first), 130, log);

    const again = spawn(process.execPath, [BIN, 'backfill', '--resume', run], { env: { ...process.env, ...e2e.pipeline.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log2 = '';
    again.stderr.on('data', (d: Buffer) => (log2 += d.toString()));
    await waitFor('the run to resume', async () => /resuming backfill run/.test(log2), 60_000);
    assert.match(log2, /resuming backfill run.*sinks=redis.*rate=20\b/, 'the run kept its rate and its sink');
    again.kill('SIGINT');
    assert.equal(await exited(again), 130, log2);

    const last = await runCli(['--json', 'backfill', '--resume', run, '--rate', '100000'], e2e.pipeline.env, 120_000);
    assert.equal(last.code, 0, last.stderr);
    const summary = JSON.parse(last.stdout) as { rate: number; sinks: string[]; rowsTotal: number };
    assert.equal(summary.rate, 100000, 'a --rate given on resume replaces the run\'s');
    assert.deepEqual(summary.sinks, ['redis']);
    assert.equal(summary.rowsTotal, 201);
    const refused = await runCli(['backfill', '--resume', run, '--sink', 'http'], e2e.pipeline.env);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /keeps its sinks/);
  });
});
