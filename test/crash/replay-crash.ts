import { kafkaClient } from '../../src/core/clients/rdkafka.js';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { loadConfig } from '../../src/core/config/index.js';
import { letterKey, parseLetter } from '../../src/core/replay/letter.js';
import { countOpenLetters } from '../../src/core/replay/open-letters.js';
import { decodeResolution } from '../../src/core/replay/resolutions.js';
import { readRow } from '../../src/core/sinks/redis/sink.js';
import { silentLogger } from '../../src/core/logger.js';
import { HttpReceiver } from '../../src/receiver/server.js';
import { exited } from '../helpers/capturer.js';
import { readTopic } from '../helpers/kafka-read.js';
import { readToEnd } from '../../src/core/replay/topic-reader.js';
import { dropPipeline, isolatedPipeline, RECEIVER_KEY, startStream, waitFor } from '../helpers/pipeline.js';
import { BIN } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The exactly-once proof of replay-dlq. A running `stream` dead-letters every row of a
 * table in all three sinks (a per-table schema refuses them: real failures, real LSNs);
 * a share of the rows is then updated to a valid value, which every sink takes (so those
 * rows' letters are superseded in Redis and BigQuery); a share of the letters is written
 * to the DLQ a second time, as a crash of the deliverer leaves them. The cause is fixed
 * (the schema accepts the rows) and `replay-dlq --execute` is SIGKILLed at random instants,
 * then run again until it reports done. Afterwards every letter is resolved exactly once
 * (replayed or superseded), HTTP processed each event once (Idempotency-Key), BigQuery's
 * views hold each replayed event once and the newer value of each superseded row, Redis
 * equals PostgreSQL, and no letter is left open.
 */
export interface ReplayCrashOptions {
  rows: number;
  /** Every Nth row is updated after it was dead-lettered (its letters become superseded). */
  updateEvery: number;
  /** Share of letters written twice. */
  duplicateShare: number;
  kills: number;
  killWindowMs: [number, number];
  batchSize: number;
  /** --rate of the runs that are killed, so each is killed part way (the last run has none). */
  rate: number;
  log?: (line: string) => void;
}

export interface ReplayCrashResult {
  kills: number;
  letters: number;
  replayed: number;
  superseded: number;
  lost: number;
  duplicates: number;
  open_after: number;
  copies_written: number;
  redis_matches_postgres: boolean;
  mismatches: string[];
  runs: number;
  /** Runs that resolved at least one letter (killed ones included). */
  runs_with_progress: number;
  seconds: number;
}


export async function runReplayCrash(options: ReplayCrashOptions): Promise<ReplayCrashResult> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const receiver = new HttpReceiver({ hmacKey: RECEIVER_KEY });
  const receiverUrl = `http://127.0.0.1:${(await receiver.listen(0)).port}`;
  const table = unique('rcrash');
  const t = `public.${table}`;
  const dir = tempDir('streamctl-replay-crash-');
  const schemaFile = path.join(dir, 'row.schema.json');
  const configFile = path.join(dir, 'config.yaml');
  writeFileSync(schemaFile, JSON.stringify({ type: 'object', properties: { v: { not: { const: 'bad' } } } }));
  writeFileSync(configFile, `validation:\n  tables:\n    ${t}: ${schemaFile}\n`);
  const { tag, env } = isolatedPipeline([t], `${receiverUrl}/events`, { STREAMCTL_CONFIG: configFile });
  const logDir = path.join(process.env['CRASH_LOG_DIR'] ?? tmpdir(), `streamctl-crash-replay-${tag}`);
  mkdirSync(logDir, { recursive: true });
  log(`child logs in ${logDir}`);
  const config = loadConfig({ env, file: configFile });
  const db = makePgClient(config.postgres);
  await db.connect();
  const kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
  const admin = kafka.admin();
  await admin.connect();
  const redis = new Redis({ host: config.sinks.redis.host, port: config.sinks.redis.port, lazyConnect: true });
  await redis.connect();
  const bq = makeBigQuery(config.sinks.bigquery);
  const dlqTopic = `${tag}.dlq`;
  try {
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    const updated = Math.floor(options.rows / options.updateEvery);
    const stream = startStream(env, 'all', path.join(logDir, 'stream.log'));
    try {
      await waitFor('the stream to start', async () => stream.log.text.includes('capture starting') && (stream.log.text.match(/sink delivering/g) ?? []).length === 3, 120_000);
      for (let from = 1; from <= options.rows; from += 500) {
        await db.query(`INSERT INTO ${table} SELECT g, 'bad' FROM generate_series($1::int, $2::int) AS g`, [from, Math.min(options.rows, from + 499)]);
      }
      await waitFor(`${3 * options.rows} dead letters`, async () => (await dlqRecordCount()) >= 3 * options.rows, 600_000);
      await db.query(`UPDATE ${table} SET v = 'good' WHERE id % $1 = 0`, [options.updateEvery]);
      await waitFor('the updates in every sink', async () => {
        const http = (await (await fetch(`${receiverUrl}/_stats`)).json()) as { unique_keys: number };
        const inRedis = await redis.scard(`${tag}:keys:${t}`);
        const [rows] = await bq.query({ query: `SELECT COUNT(DISTINCT event_id) AS n FROM \`${tag}.${config.sinks.bigquery.viewOnce}\`` });
        return http.unique_keys >= updated && inRedis >= updated && Number((rows as Array<{ n: number }>)[0]?.n) >= updated;
      }, 300_000);
    } finally {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
    log(`${3 * options.rows} letters from ${options.rows} rows; ${updated} rows updated since`);

    // Duplicates, as a deliverer killed between the DLQ write and its offset commit leaves them.
    const producer = kafka.producer();
    await producer.connect();
    const consumerless = await readRawDlq();
    const copies = consumerless.filter((_, i) => i % Math.round(1 / options.duplicateShare) === 0);
    for (let i = 0; i < copies.length; i += 500) {
      await producer.send({ topic: dlqTopic, messages: copies.slice(i, i + 500) });
    }
    await producer.disconnect();
    log(`${consumerless.length} letters in the DLQ, ${copies.length} written again`);

    // The fix: the schema accepts the rows now.
    writeFileSync(schemaFile, JSON.stringify({ type: 'object' }));
    const [lo, hi] = options.killWindowMs;
    // The killed runs must not be able to finish the work between them, or a fast machine
    // ends the replay before the last kill (CI once saw "only 2 kills"): cap their rate so
    // that every kill landing at the end of its window still leaves 30 % of the letters.
    const lettersToResolve = consumerless.length + copies.length;
    const killedRate = Math.max(1, Math.min(options.rate, Math.floor((0.7 * lettersToResolve) / (options.kills * (hi / 1000)))));
    log(`killed runs replay at most ${killedRate} letters/s`);
    let kills = 0;
    let runs = 0;
    const runOnce = (killAfterMs: number | null) =>
      new Promise<{ code: number | null; stdout: string; killed: boolean }>((resolve) => {
        runs++;
        const args = [BIN, 'replay-dlq', '--execute', '--batch-size', String(options.batchSize), '--json', ...(killAfterMs === null ? [] : ['--rate', String(killedRate)])];
        const child = spawn(process.execPath, args, { env: { ...process.env, ...env, STREAMCTL_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
        const file = createWriteStream(path.join(logDir, `replay-${runs}.log`));
        child.stderr.pipe(file);
        let stdout = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        let killed = false;
        const timer = killAfterMs === null ? undefined : setTimeout(() => {
          killed = child.exitCode === null;
          child.kill('SIGKILL');
        }, killAfterMs);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, killed });
        });
      });
    while (kills < options.kills) {
      const r = await runOnce(lo + Math.random() * (hi - lo));
      if (r.killed) kills++;
      else if (r.code === 0) {
        log(`run ${runs} finished before its kill`);
        if ((JSON.parse(r.stdout) as { open: number }).open === 0) break;
      } else throw new Error(`replay run ${runs} failed (exit ${r.code}): ${r.stdout}; see ${logDir}`);
    }
    log(`${kills} kills; running to the end`);
    for (let attempt = 0; ; attempt++) {
      const r = await runOnce(null);
      if (r.code !== 0) throw new Error(`replay run ${runs} failed (exit ${r.code}): ${r.stdout}; see ${logDir}`);
      const summary = JSON.parse(r.stdout) as { open: number; complete: boolean };
      if (summary.complete && summary.open === 0) break;
      if (attempt > 5) throw new Error('replay never reported done');
    }

    // The count.
    const mismatches: string[] = [];
    const letters = new Map<string, { sink: string; eventId: string; key: number }>();
    for (const m of await readRawDlq()) {
      const l = parseLetter(0, { ...m, offset: '0', timestamp: '0', attributes: 0 } as never);
      letters.set(letterKey(l.sink, l.eventId), { sink: l.sink, eventId: l.eventId, key: Number((l.rowKey as { id: number }).id) });
    }
    const resolutions = new Map<string, string>();
    const byRun = new Map<string, number>();
    for (const r of await readTopic(kafka, `${dlqTopic}-resolved`, { enough: () => true, quietMs: 2000 })) {
      const d = decodeResolution(r.value);
      if (!d) continue;
      // A key resolved twice would mean a letter was replayed again after it was resolved.
      if (resolutions.has(r.key)) mismatches.push(`${r.key}: resolved twice (${resolutions.get(r.key)}, then ${d.outcome} by ${d.run})`);
      resolutions.set(r.key, d.outcome);
      byRun.set(d.run, (byRun.get(d.run) ?? 0) + 1);
    }
    log(`letters resolved per run (the killed runs first): ${JSON.stringify([...byRun.values()])}`);
    let replayed = 0;
    let superseded = 0;
    let lost = 0;
    let duplicates = 0;
    const httpKeys = ((await (await fetch(`${receiverUrl}/_keys`)).json()) as { keys: Record<string, number> }).keys;
    const [onceRows] = await bq.query({ query: `SELECT event_id, COUNT(*) AS n FROM \`${tag}.${config.sinks.bigquery.viewOnce}\` GROUP BY event_id` });
    const inBigQuery = new Map((onceRows as Array<{ event_id: string; n: number }>).map((r) => [r.event_id, Number(r.n)]));
    for (const [key, l] of letters) {
      const outcome = resolutions.get(key);
      if (outcome === 'replayed') replayed++;
      else if (outcome === 'superseded') superseded++;
      else {
        lost++;
        mismatches.push(`${key}: ${outcome ?? 'no resolution'}`);
        continue;
      }
      const isUpdated = l.key % options.updateEvery === 0;
      if (l.sink === 'http') {
        const n = httpKeys[l.eventId] ?? 0;
        if (n === 0) lost++;
        if (n > 1) duplicates += n - 1;
      } else if (l.sink === 'bigquery') {
        const n = inBigQuery.get(l.eventId) ?? 0;
        if (outcome === 'replayed' && n === 0) lost++;
        if (n > 1) duplicates += n - 1;
        if (outcome === 'superseded' && !isUpdated) mismatches.push(`${key}: superseded but its row was never updated`);
        if (outcome === 'superseded' && n > 0) mismatches.push(`${key}: superseded yet written`);
      } else if (outcome === 'superseded' && !isUpdated) mismatches.push(`${key}: superseded but its row was never updated`);
    }
    // Redis equals PostgreSQL; BigQuery's latest view too.
    const { rows: pgRows } = await db.query<{ id: number; v: string }>(`SELECT id, v FROM ${table} ORDER BY id`);
    const [latestRows] = await bq.query({ query: `SELECT row_key, after FROM \`${tag}.${config.sinks.bigquery.viewLatest}\` WHERE source_table = '${table}'` });
    const latest = new Map((latestRows as Array<{ row_key: string; after: string }>).map((r) => [r.row_key, (JSON.parse(r.after) as { v: string }).v]));
    let redisMatches = true;
    for (const row of pgRows) {
      const inRedis = await readRow(redis, `${tag}:`, t, { id: row.id });
      if (inRedis?.['v'] !== row.v) {
        redisMatches = false;
        mismatches.push(`redis row ${row.id}: ${String(inRedis?.['v'])} != ${row.v}`);
      }
      if (latest.get(`{"id":${row.id}}`) !== row.v) mismatches.push(`bigquery latest row ${row.id}: ${String(latest.get(`{"id":${row.id}}`))} != ${row.v}`);
    }
    const open = await countOpenLetters(kafkaClient(config.kafka, silentLogger), config);
    return {
      kills,
      letters: letters.size,
      replayed,
      superseded,
      lost,
      duplicates,
      open_after: open.total,
      copies_written: copies.length,
      redis_matches_postgres: redisMatches,
      mismatches: mismatches.slice(0, 20),
      runs,
      runs_with_progress: byRun.size,
      seconds: Math.round((performance.now() - started) / 1000),
    };
  } finally {
    await dropPipeline(db, admin, tag);
    await admin.deleteTopics({ topics: [`${dlqTopic}-resolved`] }).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await db.end();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${tag}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
    redis.disconnect();
    await bq.dataset(tag).delete({ force: true }).catch(() => {});
    await admin.disconnect();
    await receiver.close();
  }

  async function dlqRecordCount(): Promise<number> {
    if (!(await admin.listTopics()).includes(dlqTopic)) return 0;
    return (await admin.fetchTopicOffsets(dlqTopic)).reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
  }

  /** The DLQ's records as they were written (key, value, headers), to write some again. */
  async function readRawDlq(): Promise<Array<{ key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer | string> }>> {
    const out: Array<{ key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer | string> }> = [];
    await readToEnd(kafka, dlqTopic, { groupPrefix: 'replay-crash-read' }, async (_partition, messages) => {
      for (const m of messages) out.push({ key: m.key, value: m.value, headers: m.headers as Record<string, Buffer | string> });
    });
    return out;
  }
}
