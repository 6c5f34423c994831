import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import QueryStream from 'pg-query-stream';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { makeRedis } from '../../src/core/clients/redis.js';
import { derivedNames, loadConfig, type Config } from '../../src/core/config/index.js';
import { canonicalJson } from '../../src/core/event/identity.js';
import { endOffsets, kafkaClient } from '../../src/core/clients/rdkafka.js';
import { silentLogger } from '../../src/core/logger.js';
import { decodeQueryRow, RAW_TEXT_TYPES as RAW, SESSION_OPTIONS, TypeRegistry } from '../../src/core/source/pg-types.js';
import { exited } from '../helpers/capturer.js';
import { readTopic } from '../helpers/kafka-read.js';
import { dropPipeline, isolatedPipeline, startStream, waitFor } from '../helpers/pipeline.js';
import { BIN } from '../helpers/run-cli.js';

/**
 * The proof for backfill: a table of `rows` rows that the stream never saw inserted (its
 * slot is created afterwards), backfilled while a workload updates, deletes and inserts
 * rows of it and `stream` delivers to Redis and BigQuery, with the backfill SIGKILLed at
 * random instants and resumed each time. Afterwards Redis and BigQuery's `latest` view
 * equal PostgreSQL row by row, and no event id is twice in Kafka.
 */
export interface BackfillCrashOptions {
  rows: number;
  kills: number;
  chunkSize: number;
  /** Each backfill process is killed this long after it logged its run's start (random in the window). */
  killWindowMs: [number, number];
  /** Workload transactions per second (each an update, and now and then a delete or an insert). */
  workloadTps: number;
  log?: (line: string) => void;
}

export interface BackfillCrashResult {
  kills: number;
  rows: number;
  duplicates: number;
  sinks_match_postgres: boolean;
  workload_changes: number;
  read_events: number;
  mismatches: { redis: string[]; bigquery: string[] };
  seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (n: number) => Math.floor(Math.random() * n);

export async function runBackfillCrash(options: BackfillCrashOptions): Promise<BackfillCrashResult> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const { tag, env } = isolatedPipeline([], 'http://127.0.0.1:9/unused', {
    STREAMCTL_LOG_LEVEL: 'warn',
    STREAMCTL_SINKS_HTTP_ENABLED: 'false',
  });
  const table = `${tag}_rows`;
  env['STREAMCTL_POSTGRES_TABLES'] = `public.${table}`;
  const config: Config = loadConfig({ env });
  const names = derivedNames(config);
  const db = makePgClient(config.postgres, { options: SESSION_OPTIONS, types: RAW });
  await db.connect();
  const kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
  const admin = kafka.admin();
  await admin.connect();
  const redis = makeRedis(config.sinks.redis, silentLogger);
  await redis.connect();
  const bq = makeBigQuery(config.sinks.bigquery);
  const children: ChildProcess[] = [];
  let stopWorkload = false;
  // Awaited in `finally` before the table is dropped: a workload still writing would fail on the
  // dropped table as an unhandled rejection, reported in place of the failure that got here.
  let workload: Promise<void> = Promise.resolve();
  try {
    await db.query(`CREATE TABLE ${table} (id int8 PRIMARY KEY, v int NOT NULL, payload text, amount numeric(14,2), updated timestamptz NOT NULL DEFAULT now())`);
    await db.query(`INSERT INTO ${table} SELECT g, 0, repeat(md5(g::text), 3), g * 1.25, now() FROM generate_series(1, $1::int) g`, [options.rows]);
    await db.query(`ANALYZE ${table}`);
    log(`${options.rows} rows in ${table}`);

    // The slot comes after the rows: only the backfill can bring them to the sinks.
    const stream = startStream({ ...env, STREAMCTL_LOG_LEVEL: 'info' }, 'all');
    children.push(stream.child);
    await waitFor('the stream to start', async () => (stream.log.text.includes('capture starting') && stream.log.text.split('sink delivering').length > 2) || (stream.child.exitCode !== null && Promise.reject(new Error(stream.log.text))), 90_000);

    let workloadChanges = 0;
    workload = (async () => {
      const w = makePgClient(config.postgres);
      await w.connect();
      let nextId = options.rows + 1;
      try {
        while (!stopWorkload) {
          const t0 = performance.now();
          await w.query('BEGIN');
          const r1 = await w.query(`UPDATE ${table} SET v = v + 1, amount = amount + 1, updated = now() WHERE id = $1`, [1 + rand(options.rows)]);
          workloadChanges += r1.rowCount ?? 0;
          const dice = rand(10);
          if (dice === 0) workloadChanges += (await w.query(`DELETE FROM ${table} WHERE id = $1`, [1 + rand(options.rows)])).rowCount ?? 0;
          if (dice === 1) workloadChanges += (await w.query(`INSERT INTO ${table} (id, v, payload) VALUES ($1, 1, 'new')`, [nextId++])).rowCount ?? 0;
          await w.query('COMMIT');
          const spare = 1000 / options.workloadTps - (performance.now() - t0);
          if (spare > 0) await sleep(spare);
        }
      } finally {
        await w.end();
      }
    })();
    workload.catch(() => {}); // its failure is reported where it is awaited

    // The backfill, killed and resumed. The runs that will be killed are rate-capped so that
    // between them they cannot finish the table even if every kill lands at the end of its
    // window: otherwise a fast machine (or a faster engine) ends the backfill before the last
    // kill, and the proof has fewer kills than it claims.
    const [lo, hi] = options.killWindowMs;
    const killedRate = Math.max(100, Math.floor((0.7 * options.rows) / (options.kills * (hi / 1000))));
    log(`killed runs backfill at most ${killedRate} rows/s`);
    let run: string | null = null;
    let kills = 0;
    let summary: { rowsTotal: number; state: string } | null = null;
    for (let attempt = 0; summary === null; attempt++) {
      if (attempt > options.kills + 20) throw new Error('the backfill did not finish');
      const killing = kills < options.kills;
      const args = [
        ...(run ? ['backfill', '--resume', run, '--json'] : ['backfill', '--table', `public.${table}`, '--chunk-size', String(options.chunkSize), '--json']),
        ...(killing ? ['--rate', String(killedRate)] : []),
      ];
      const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env, STREAMCTL_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let out = '';
      let err = '';
      let markStarted: () => void = () => {};
      const runStarted = new Promise<void>((resolve) => (markStarted = resolve));
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        run ??= /"run":"(bf-[^"]+)"/.exec(err)?.[1] ?? null;
        if (/backfill run started|resuming backfill run/.test(err)) markStarted();
      });
      const killAt = runStarted.then(() => sleep(lo + rand(hi - lo))).then(() => 'kill' as const);
      const code = await Promise.race([exited(child), killing ? killAt : new Promise<never>(() => {})]);
      if (code === 'kill') {
        child.kill('SIGKILL');
        await exited(child);
        kills++;
        log(`kill ${kills}${run ? ` (run ${run})` : ' (before the run started)'}`);
        continue;
      }
      if (code === 2 && /no backfill run/.test(out)) {
        run = null; // killed before its first chunk committed: nothing to resume, start again
        continue;
      }
      if (code !== 0) throw new Error(`backfill exited with ${String(code)}: ${out.slice(-1000)} ${err.slice(-2000)}`);
      summary = JSON.parse(out.trim().split('\n').pop()!) as { rowsTotal: number; state: string };
    }
    log(`backfill done: ${summary.rowsTotal} rows, ${kills} kills`);
    stopWorkload = true;
    await workload;

    // Quiet: a marker written last, then every sink past it.
    await db.query(`INSERT INTO ${table} (id, v, payload) VALUES (-1, 0, 'marker')`);
    await waitFor('the marker in Redis', async () => (await redis.exists(`${tag}:row:public.${table}:${canonicalJson({ id: '-1' })}`)) === 1, 300_000);
    await waitFor(
      'BigQuery to catch up',
      async () => {
        const ends = await endOffsets(admin, names.changesTopic);
        const committed = await admin.fetchOffsets({ groupId: names.consumerGroup('bigquery'), topics: [names.changesTopic] });
        let lag = 0;
        for (const end of ends) lag += Number(BigInt(end.high) - BigInt(committed[0]?.partitions.find((p) => p.partition === end.partition)?.offset ?? '0'));
        return lag <= ends.length;
      },
      600_000,
    );
    await sleep(3000);

    // Kafka: no event id twice.
    const high = (await endOffsets(admin, names.changesTopic)).reduce((n, p) => n + Number(p.high), 0);
    const records = await readTopic(kafkaClient(config.kafka, silentLogger), names.changesTopic, { enough: (rs) => rs.length >= high * 0.5, quietMs: 3000 });
    const ids = new Map<string, number>();
    for (const r of records) {
      const id = /"id":"([^"]+)"/.exec(r.value)?.[1] ?? '';
      ids.set(id, (ids.get(id) ?? 0) + 1);
    }
    const duplicates = [...ids.values()].reduce((n, c) => n + c - 1, 0);
    const readEvents = [...ids.keys()].filter((id) => id.startsWith('r-')).length;

    // Sinks against PostgreSQL, row by row.
    const [bqRows] = await bq.query({ query: `SELECT row_key, after FROM \`${tag}.latest\` WHERE source_table = '${table}'` });
    const inBq = new Map((bqRows as Array<{ row_key: string; after: string }>).map((r) => [r.row_key, r.after]));
    const registry = new TypeRegistry((sql, params) => db.query(sql, params));
    const mismatches = { redis: [] as string[], bigquery: [] as string[] };
    const strip = (row: Record<string, unknown>) => Object.fromEntries(Object.entries(row).filter(([k]) => k !== '_streamctl'));
    const reader = makePgClient(config.postgres, { options: SESSION_OPTIONS });
    await reader.connect();
    let pgRows = 0;
    try {
      const stream = reader.query(new QueryStream(`SELECT * FROM ${table} ORDER BY id`, [], { batchSize: 2000, rowMode: 'array', types: RAW } as never));
      let batch: unknown[][] = [];
      let fields: Array<{ name: string; dataTypeID: number }> | null = null;
      const check = async (rows: unknown[][]) => {
        await registry.resolveForFields(fields!);
        const wants = rows.map((raw) => decodeQueryRow(fields!, raw, registry));
        const pipe = redis.pipeline();
        for (const want of wants) pipe.hgetall(`${tag}:row:public.${table}:${canonicalJson({ id: want['id'] })}`);
        const got = (await pipe.exec()) ?? [];
        wants.forEach((want, i) => {
          const key = canonicalJson({ id: want['id'] });
          const fieldsGot = (got[i]?.[1] ?? {}) as Record<string, string>;
          const redisRow = strip(Object.fromEntries(Object.entries(fieldsGot).map(([k, v]) => [k, JSON.parse(v) as unknown])));
          if (canonicalJson(redisRow) !== canonicalJson(want)) mismatches.redis.push(`${key}: redis ${canonicalJson(redisRow)} postgres ${canonicalJson(want)}`);
          const bqAfter = inBq.get(key);
          inBq.delete(key);
          if (bqAfter === undefined || canonicalJson(strip(JSON.parse(bqAfter) as Record<string, unknown>)) !== canonicalJson(want)) {
            mismatches.bigquery.push(`${key}: bigquery ${bqAfter ?? 'missing'} postgres ${canonicalJson(want)}`);
          }
        });
      };
      for await (const raw of stream as AsyncIterable<unknown[]>) {
        fields ??= (stream as unknown as { _result: { fields: Array<{ name: string; dataTypeID: number }> } })._result.fields;
        batch.push(raw);
        pgRows++;
        if (batch.length === 2000) {
          await check(batch);
          batch = [];
        }
      }
      if (batch.length > 0) await check(batch);
    } finally {
      await reader.end();
    }
    for (const key of inBq.keys()) mismatches.bigquery.push(`${key}: in BigQuery, not in PostgreSQL`);
    const inRedis = await redis.scard(`${tag}:keys:public.${table}`);
    if (inRedis !== pgRows) mismatches.redis.push(`${inRedis} rows in Redis, ${pgRows} in PostgreSQL`);

    stream.child.kill('SIGTERM');
    await exited(stream.child);
    return {
      kills,
      rows: summary.rowsTotal,
      duplicates,
      sinks_match_postgres: mismatches.redis.length === 0 && mismatches.bigquery.length === 0,
      workload_changes: workloadChanges,
      read_events: readEvents,
      mismatches: { redis: mismatches.redis.slice(0, 5), bigquery: mismatches.bigquery.slice(0, 5) },
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } finally {
    stopWorkload = true;
    await workload.catch(() => {});
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const c of children) await exited(c);
    const keys = await redis.keys(`${tag}:*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
    await redis.quit();
    await bq.dataset(tag).delete({ force: true }).catch(() => {});
    await dropPipeline(db, admin, tag);
    const groups = (await admin.listGroups().catch(() => ({ groups: [] as Array<{ groupId: string }> }))).groups.map((g) => g.groupId).filter((g) => g.startsWith(`streamctl-${tag}-`));
    await admin.deleteGroups(groups).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.disconnect();
  }
}
