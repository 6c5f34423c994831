/**
 * `streamctl verify` on a big table, beside a plain `COPY (SELECT * FROM t ORDER BY id) TO
 * STDOUT` of the same rows (how fast PostgreSQL alone reads and prints them).
 *
 * Redis: BENCH_ROWS (1,000,000) rows loaded the real way (`stream` + `backfill`), then
 * verify --sink redis timed from process start to exit, then one row changed in Redis
 * behind the pipeline's back and verify again (it must exit 3 and name the row: the
 * equal case could have failed). BigQuery: the emulator evaluates the `latest` view over
 * the whole log for every chunk's query, so a smaller table, BENCH_BQ_ROWS (20,000).
 *
 * Figures only, never assertions. The last stdout line is one JSON object.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeBigQuery } from '../src/core/clients/bigquery.js';
import { kafkaClient } from '../src/core/clients/rdkafka.js';
import { makePgClient } from '../src/core/clients/postgres.js';
import { makeRedis } from '../src/core/clients/redis.js';
import { loadConfig, type Config } from '../src/core/config/index.js';
import { silentLogger } from '../src/core/logger.js';
import type { VerifyResult } from '../src/core/verify/verify.js';
import { exited, intEnv, round, runAsync, say, sleep } from './lib.js';
import { cpuMark, cpuSince, load, ROOT, stackSummary } from './machine.js';

const BIN = path.join(ROOT, 'bin/streamctl');
const N = intEnv('BENCH_ROWS', 1_000_000);
const BQ_N = intEnv('BENCH_BQ_ROWS', 20_000);
const PSQL = '/usr/lib/postgresql/15/bin/psql';

interface Pipeline {
  tag: string;
  table: string;
  env: NodeJS.ProcessEnv;
  config: Config;
}

function pipeline(sink: 'redis' | 'bigquery'): Pipeline {
  const tag = `benchvf_${sink}_${randomBytes(3).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {
    STREAMCTL_PIPELINE_ID: tag,
    STREAMCTL_PIPELINE_TOPIC_PREFIX: tag,
    STREAMCTL_METRICS_PORT: '0',
    STREAMCTL_LOG_LEVEL: 'warn',
    STREAMCTL_POSTGRES_TABLES: `public.${tag}_orders`,
    STREAMCTL_SINKS_REDIS_KEY_PREFIX: `${tag}:`,
    STREAMCTL_SINKS_BIGQUERY_DATASET: tag,
    STREAMCTL_SINKS_HTTP_ENABLED: 'false',
    STREAMCTL_SINKS_REDIS_ENABLED: sink === 'redis' ? 'true' : 'false',
    STREAMCTL_SINKS_BIGQUERY_ENABLED: sink === 'bigquery' ? 'true' : 'false',
  };
  return { tag, table: `${tag}_orders`, env, config: loadConfig({ env }) };
}

async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string; seconds: number }> {
  const started = performance.now();
  const r = await runAsync(process.execPath, [BIN, ...args], env);
  return { ...r, seconds: (performance.now() - started) / 1000 };
}

async function main(): Promise<void> {
  say(`streamctl verify bench: Redis ${N} rows, BigQuery (emulator) ${BQ_N} rows`);
  say(`machine: ${os.cpus().length} cores, ${round(os.totalmem() / 2 ** 30, 1)} GiB; shared with the local stack: ${stackSummary()}; and with any other test run on it (load avg ${load()})`);
  const redisP = pipeline('redis');
  const bqP = pipeline('bigquery');
  const db = makePgClient(redisP.config.postgres);
  await db.connect();
  const admin = kafkaClient(redisP.config.kafka, silentLogger, { retries: 10 }).admin();
  await admin.connect();
  const redis = makeRedis(redisP.config.sinks.redis, silentLogger);
  await redis.connect();
  const streams: Array<ReturnType<typeof spawn>> = [];
  const out: Record<string, unknown> = { rows: N };
  try {
    for (const [p, n] of [[redisP, N], [bqP, BQ_N]] as const) {
      await db.query(`CREATE TABLE ${p.table} (id int8 PRIMARY KEY, customer_id int8 NOT NULL, status text NOT NULL, amount numeric(12,2), quantity int4,
        score float8, active bool, tags text[], attrs jsonb, created_at timestamptz NOT NULL, note text)`);
      for (let done = 0; done < n; done += 500_000) {
        await db.query(
          `INSERT INTO ${p.table} SELECT g, 100000 + (g * 7919) % 900000, (ARRAY['new','paid','shipped'])[1 + g % 3], round((random() * 1000)::numeric, 2), 1 + g % 9,
             random(), g % 3 <> 0, ARRAY['tag' || (g % 11)], jsonb_build_object('campaign', 'spring-' || (g % 13)), now() - (g % 86400) * interval '1 second', 'note ' || md5(g::text)
           FROM generate_series($1::int8, $2::int8) g`,
          [done + 1, Math.min(n, done + 500_000)],
        );
      }
      await db.query(`VACUUM ANALYZE ${p.table}`);
      const child = spawn(process.execPath, [BIN, 'stream'], { env: { ...process.env, ...p.env }, stdio: ['ignore', 'ignore', 'inherit'] });
      streams.push(child);
      const loadStarted = performance.now();
      const bf = await cli(['backfill', '--table', `public.${p.table}`, '--json'], p.env);
      if (bf.code !== 0) throw new Error(`backfill failed: ${bf.stderr}`);
      say(`${p.table}: ${n} rows backfilled in ${round(bf.seconds, 1)} s; waiting for the sink to hold them`);
      if (p === redisP) {
        while (Number(await redis.scard(`${p.tag}:keys:public.${p.table}`)) < n) await sleep(1000);
      } else {
        const bq = makeBigQuery(p.config.sinks.bigquery);
        for (;;) {
          const [rows] = await bq.query({ query: `SELECT COUNT(*) AS n FROM \`${p.config.sinks.bigquery.projectId}.${p.tag}.${p.config.sinks.bigquery.table}\`` }).catch(() => [[{ n: 0 }]]);
          if (Number((rows as Array<{ n: number }>)[0]?.n ?? 0) >= n) break;
          await sleep(2000);
        }
      }
      say(`  in the sink after ${round((performance.now() - loadStarted) / 1000, 1)} s`);
    }

    // --- the limit: COPY ... TO STDOUT --------------------------------------------------
    const { config } = redisP;
    let mark = cpuMark();
    const copyStarted = performance.now();
    const copy = await runAsync('bash', ['-c', `"${PSQL}" -X -q -h ${config.postgres.host} -p ${config.postgres.port} -U ${config.postgres.user} -d ${config.postgres.database} ` +
      `-c "COPY (SELECT * FROM ${redisP.table} ORDER BY id) TO STDOUT" | wc -c`], { PGPASSWORD: config.postgres.password });
    const copySeconds = (performance.now() - copyStarted) / 1000;
    if (copy.code !== 0) throw new Error(`COPY failed: ${copy.stderr}`);
    say(`COPY (SELECT * ORDER BY id) TO STDOUT: ${round(copySeconds, 2)} s, ${Math.round(N / copySeconds)} rows/s (${round(Number(copy.stdout.trim()) / 2 ** 20, 1)} MiB)`);
    say(`  CPU meanwhile (% of one core): ${cpuSince(mark, 'psql')}`);
    out['copy_s'] = round(copySeconds, 2);
    out['copy_rows_per_s'] = Math.round(N / copySeconds);

    // --- verify, Redis ------------------------------------------------------------------
    mark = cpuMark();
    const v = await cli(['verify', '--table', `public.${redisP.table}`, '--sink', 'redis', '--json'], redisP.env);
    const vr = JSON.parse(v.stdout) as VerifyResult;
    const r = vr.results[0]!;
    say(`verify --sink redis: exit ${v.code}, ${round(v.seconds, 1)} s (process), ${Math.round(N / v.seconds)} rows/s; equal ${r.equal}; ` +
      `read ${round(r.bytes_postgres / 2 ** 20, 1)} MiB from PostgreSQL, ${round(r.bytes_sink / 2 ** 20, 1)} MiB from Redis (in the server; the wire carries 6 integers per 1,000 rows and the key names of the extras pass)`);
    say(`  CPU meanwhile (% of one core): ${cpuSince(mark, 'streamctl verify')}`);
    out['redis'] = { exit: v.code, seconds: round(v.seconds, 1), rows_per_s: Math.round(N / v.seconds), equal: r.equal, mib_postgres: round(r.bytes_postgres / 2 ** 20, 1), mib_redis: round(r.bytes_sink / 2 ** 20, 1) };
    out['ratio_to_copy'] = round(copySeconds / v.seconds, 3);

    // --- the planted fault ----------------------------------------------------------------
    const victim = Math.floor(N / 2) + 7;
    await redis.hset(`${redisP.tag}:row:public.${redisP.table}:{"id":"${victim}"}`, 'status', JSON.stringify('tampered'));
    const f = await cli(['verify', '--table', `public.${redisP.table}`, '--sink', 'redis', '--json', '--settle-timeout', '30'], redisP.env);
    const fr = (JSON.parse(f.stdout) as VerifyResult).results[0]!;
    say(`planted fault (row ${victim} changed in Redis): exit ${f.code} in ${round(f.seconds, 1)} s, differences ${JSON.stringify(fr.differences.map((d) => [d.kind, d.key, d.columns]))}, ${fr.chunks_differing} of ${fr.chunks} chunks compared row by row`);
    out['planted'] = { exit: f.code, differences: fr.differences.length, chunks_differing: fr.chunks_differing };

    // --- verify, BigQuery ------------------------------------------------------------------
    mark = cpuMark();
    const b = await cli(['verify', '--table', `public.${bqP.table}`, '--sink', 'bigquery', '--json'], bqP.env);
    const br = (JSON.parse(b.stdout) as VerifyResult).results[0]!;
    say(`verify --sink bigquery (${BQ_N} rows): exit ${b.code}, ${round(b.seconds, 1)} s, ${Math.round(BQ_N / b.seconds)} rows/s; equal ${br.equal}; read ${round(br.bytes_sink / 2 ** 20, 1)} MiB from BigQuery`);
    say(`  CPU meanwhile (% of one core): ${cpuSince(mark, 'streamctl verify')}`);
    out['bigquery'] = { rows: BQ_N, exit: b.code, seconds: round(b.seconds, 1), rows_per_s: Math.round(BQ_N / b.seconds), equal: br.equal };
    out['load_avg'] = load();
  } finally {
    for (const s of streams) s.kill('SIGTERM');
    for (const s of streams) await exited(s);
    for (const p of [redisP, bqP]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${p.tag}:*`, 'COUNT', 5000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
      await db.query('SELECT pg_drop_replication_slot($1)', [`streamctl_${p.tag}`]).catch(() => {});
      await db.query(`DROP PUBLICATION IF EXISTS streamctl_${p.tag}`).catch(() => {});
      await db.query(`DROP TABLE IF EXISTS ${p.table}`).catch(() => {});
      await admin.deleteTopics({ topics: [`${p.tag}.changes`, `${p.tag}.checkpoints`, `${p.tag}.dlq`] }).catch(() => {});
      const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`streamctl-${p.tag}-`));
      await admin.deleteGroups(groups).catch(() => {});
    }
    await makeBigQuery(bqP.config.sinks.bigquery).dataset(bqP.tag).delete({ force: true }).catch(() => {});
    await redis.quit();
    await admin.disconnect();
    await db.end();
  }
  say(JSON.stringify(out));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
