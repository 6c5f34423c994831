/**
 * Capture throughput on a prepared WAL backlog, beside two limits measured in the same run:
 *  - limit A: pg_recvlogical reading the same WAL (same publication, pgoutput v1) from its
 *    own slot: how fast PostgreSQL can decode and send it;
 *  - limit B: Kafka's own ProducerPerformance writing as many records of the same average
 *    size, acks=all, in transactions of about our commit cadence: how fast Kafka takes it.
 * Ours is `streamctl stream --role capture` (bin/streamctl run as a program: its launcher's
 * variables and node flags, as a user gets them), timed from process start until its checkpoint
 * says every event is in Kafka (start-up included; reported separately too).
 *
 * Figures only, never assertions. The last stdout line is one JSON object (with the
 * capturer's CPU seconds per 100k events, which contention on a shared machine changes least).
 *
 * Environment: BENCH_EVENTS (200000), BENCH_TX_ROWS (1000), STREAMCTL_CAPTURE_MAX_BATCH_EVENTS
 * (5000), BENCH_TX_MS (producer-perf transaction duration; default: our measured commit
 * cadence), BENCH_CAPTURER_NODE_ARGS (node flags for the capturer only, space-separated,
 * e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`, after the launcher's own: STREAMCTL_NODE_ARGS).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { nodeFlagsOf, programSpawn } from '../src/core/program-launch.js';
import { kafkaClient } from '../src/core/clients/rdkafka.js';
import { makePgClient } from '../src/core/clients/postgres.js';
import { readCheckpoint, checkpointGroupOf } from '../src/core/capture/kafka-writer.js';
import { recordKey } from '../src/core/event/identity.js';
import { loadConfig, type Config } from '../src/core/config/index.js';
import { silentLogger } from '../src/core/logger.js';
import { SESSION_OPTIONS } from '../src/core/source/pg-types.js';
import { forEachSlotEvent } from '../test/helpers/slot-events.js';
import { exited, intEnv, producerPerformance, round, rssKb, say, sleep } from './lib.js';
import { cpuMark, cpuSeconds, cpuSince, load, ROOT, run, stackSummary } from './machine.js';

const BIN = process.env['BENCH_STREAMCTL_BIN'] ?? path.join(ROOT, 'bin/streamctl');
const PG_RECVLOGICAL = '/usr/lib/postgresql/15/bin/pg_recvlogical';

const N = intEnv('BENCH_EVENTS', 200_000);
const TX_ROWS = intEnv('BENCH_TX_ROWS', 1000);
const MAX_BATCH = intEnv('STREAMCTL_CAPTURE_MAX_BATCH_EVENTS', 5000);

async function main(): Promise<void> {
  const tag = `bench_${randomBytes(3).toString('hex')}`;
  const table = `${tag}_events`;
  const slot = `streamctl_${tag}`;
  const publication = slot;
  const recvSlot = `${tag}_recv`;
  const perfTopic = `${tag}.perf`;
  const env: NodeJS.ProcessEnv = {
    STREAMCTL_PIPELINE_ID: tag,
    STREAMCTL_PIPELINE_TOPIC_PREFIX: tag,
    STREAMCTL_POSTGRES_TABLES: `public.${table}`,
    STREAMCTL_METRICS_PORT: '0',
    STREAMCTL_CAPTURE_MAX_BATCH_EVENTS: String(MAX_BATCH),
    STREAMCTL_LOG_LEVEL: 'info',
  };
  const config: Config = loadConfig({ env });
  const pgEnv = { PGPASSWORD: config.postgres.password };
  const db = makePgClient(config.postgres, { options: SESSION_OPTIONS });
  await db.connect();
  const kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
  const admin = kafka.admin();
  await admin.connect();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'streamctl-bench-'));
  let child: ChildProcess | null = null;
  let recv: ChildProcess | null = null;

  say(`streamctl capture bench: ${N} events, transactions of ${TX_ROWS} rows, capture.maxBatchEvents ${MAX_BATCH}`);
  say(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${round(os.totalmem() / 2 ** 30, 1)} GiB; ` +
    `shared with the local stack: ${stackSummary()}; and with other engineers' test runs on the same stack (load avg ${load()})`);

  try {
    // --- prepare -------------------------------------------------------------------------
    await db.query(`
      CREATE TABLE ${table} (
        id bigserial PRIMARY KEY, customer_id int8 NOT NULL, status text NOT NULL, amount numeric(12,2),
        quantity int4, score float8, active bool, tags text[], attrs jsonb, ref uuid,
        created_at timestamptz NOT NULL, note text)`);
    await db.query(`CREATE PUBLICATION ${publication} FOR TABLE ${table}`);
    // Both slots exist before the first row, so they see exactly the same transactions.
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [recvSlot]);
    const writeStarted = performance.now();
    for (let done = 0; done < N; done += TX_ROWS) {
      const rows = Math.min(TX_ROWS, N - done);
      await db.query(
        `INSERT INTO ${table} (customer_id, status, amount, quantity, score, active, tags, attrs, ref, created_at, note)
         SELECT 100000 + (g::int8 * 7919) % 900000,
                (ARRAY['new','paid','shipped','delivered','cancelled'])[1 + g % 5],
                round((random() * 1000)::numeric, 2),
                1 + g % 9,
                random(),
                g % 3 <> 0,
                ARRAY['tag' || (g % 11), 'tag' || (g % 7)],
                jsonb_build_object('source', 'web', 'campaign', 'spring-' || (g % 13), 'items', g % 5 + 1),
                gen_random_uuid(),
                now() - (g % 86400) * interval '1 second',
                'order note ' || md5(g::text)
         FROM generate_series($1::int, $2::int) g`,
        [done + 1, done + rows],
      );
    }
    const { rows: lsnRows } = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    const endLsn = lsnRows[0]!.lsn;
    say(`prepared: ${N} rows in ${Math.ceil(N / TX_ROWS)} transactions in ${round((performance.now() - writeStarted) / 1000, 1)} s; WAL end ${endLsn}`);

    // Average record size, from the events the capturer's own code builds for the first changes.
    const size = await sampleSizes(db, recvSlot, publication, config);
    say(`record size: value ${size.value} B (row JSON ${size.row} B), key ${size.key} B on average (sample of ${size.sample})`);

    // --- limit A: pg_recvlogical ---------------------------------------------------------
    const recvFile = path.join(tmp, 'recv.out');
    let mark = cpuMark();
    const recvStarted = performance.now();
    recv = spawn(PG_RECVLOGICAL, [
      '-d', `host=${config.postgres.host} port=${config.postgres.port} user=${config.postgres.user} dbname=${config.postgres.database}`,
      '--slot', recvSlot, '--start', '--no-loop', '--endpos', endLsn, '-f', recvFile,
      '-o', 'proto_version=1', '-o', `publication_names=${publication}`,
    ], { env: { ...process.env, ...pgEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
    let recvErr = '';
    recv.stderr?.on('data', (d: Buffer) => (recvErr += d.toString()));
    const recvCode = await exited(recv);
    const recvSeconds = (performance.now() - recvStarted) / 1000;
    recv = null;
    if (recvCode !== 0) throw new Error(`pg_recvlogical exited ${recvCode}: ${recvErr.trim()}`);
    const recvBytes = statSync(recvFile).size;
    rmSync(recvFile);
    const limitA = N / recvSeconds;
    say(`limit A  pg_recvlogical: ${round(recvSeconds, 2)} s, ${Math.round(limitA)} events/s (${round(recvBytes / 2 ** 20, 1)} MiB of pgoutput)`);
    say(`         CPU meanwhile (% of one core): ${cpuSince(mark, 'pg_recvlogical')}`);

    // --- ours ----------------------------------------------------------------------------
    // streamctl as a user runs it: through bin/streamctl's launcher, which picks node's flags (`node BIN` would skip it).
    const launch = programSpawn(BIN, ['stream', '--role', 'capture'], (process.env['BENCH_CAPTURER_NODE_ARGS'] ?? '').split(' ').filter(Boolean));
    mark = cpuMark();
    const oursStarted = performance.now();
    child = spawn(launch.command, launch.args, { env: { ...process.env, ...env, ...launch.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    const pid = child.pid!;
    let log = '';
    let streamingAt: number | null = null;
    let nodeFlags = null as string[] | null;
    let metricsUrl: string | null = null;
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
      if (streamingAt === null && log.includes('capture starting')) {
        streamingAt = performance.now();
        nodeFlags = nodeFlagsOf(pid);
      }
      metricsUrl ??= /metrics listening url=(\S+)/.exec(log)?.[1] ?? null;
    });
    let maxRss = 0;
    // BENCH_RSS_TRACE=1: the RSS once a second, to see when the peak comes (a transient or a climb).
    const rssTrace: number[] = [];
    let samples = 0;
    const rssTimer = setInterval(() => {
      const kb = rssKb(pid);
      if (kb !== null) maxRss = Math.max(maxRss, kb);
      if (kb !== null && samples++ % 5 === 0) rssTrace.push(kb);
    }, 200);
    const marks = [0.25, 0.5, 0.75, 1];
    const rssAt: number[] = [];
    const memoryAt: Array<MemorySplit | null> = [];
    let firstCheckpointAt: number | null = null;
    let firstCheckpointEvents = 0;
    let done = 0;
    const deadline = Date.now() + 30 * 60_000;
    while (done < N) {
      if (child.exitCode !== null) throw new Error(`the capturer exited with ${child.exitCode}: ${log.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`capture did not finish: ${done}/${N}`);
      await sleep(100);
      const checkpoint = await readCheckpoint(admin, config).catch(() => null);
      if (!checkpoint) continue;
      if (firstCheckpointAt === null) {
        firstCheckpointAt = performance.now();
        firstCheckpointEvents = checkpoint.events_total;
      }
      done = checkpoint.events_total;
      while (rssAt.length < marks.length && done >= marks[rssAt.length]! * N) {
        rssAt.push(rssKb(pid) ?? 0);
        memoryAt.push(metricsUrl ? await memorySplit(metricsUrl) : null);
      }
    }
    const oursSeconds = (performance.now() - oursStarted) / 1000;
    const oursCpu = cpuSince(mark, 'children');
    clearInterval(rssTimer);
    maxRss = Math.max(maxRss, ...rssAt);
    const cpu = cpuSeconds(pid);
    child.kill('SIGTERM');
    const stopCode = await exited(child);
    child = null;
    if (stopCode !== 0) say(`warning: the capturer exited ${stopCode} on SIGTERM`);
    if (process.env['BENCH_VERBOSE']) process.stderr.write(log);
    if (done !== N) say(`warning: checkpoint says ${done} events, expected ${N}`);
    const txMatch = /kafka_transactions[=:"\s]+(\d+)/.exec(log);
    const kafkaTransactions = txMatch ? Number(txMatch[1]) : Math.ceil(N / MAX_BATCH);
    const ours = N / oursSeconds;
    const startup = streamingAt !== null ? (streamingAt - oursStarted) / 1000 : null;
    const firstCheckpoint = firstCheckpointAt !== null ? (firstCheckpointAt - oursStarted) / 1000 : null;
    const steady = firstCheckpoint !== null ? oursSeconds - firstCheckpoint : oursSeconds;
    const cadenceMs = Math.max(1, Math.round((steady * 1000) / Math.max(1, kafkaTransactions - 1)));
    say(`ours     node ${nodeFlags === null ? '(flags unread)' : nodeFlags.join(' ')} bin/streamctl stream --role capture (bin/streamctl's launcher${process.env['BENCH_CAPTURER_NODE_ARGS'] ? ' and BENCH_CAPTURER_NODE_ARGS' : ''})`);
    say(`ours     streamctl capture: ${round(oursSeconds, 2)} s from process start, ${Math.round(ours)} events/s ` +
      `(streaming after ${startup === null ? '?' : round(startup, 2)} s, first checkpoint at ${firstCheckpoint === null ? '?' : round(firstCheckpoint, 2)} s, ` +
      `${Math.round((N - firstCheckpointEvents) / steady)} events/s from there; ` +
      `${kafkaTransactions} Kafka transactions, one every ~${cadenceMs} ms; capturer CPU ${cpu === null ? '?' : `${round(cpu, 1)} s = ${Math.round((100 * cpu) / oursSeconds)} % of one core, ${round((cpu * 100_000) / N, 2)} s per 100k events`})`);
    say(`         CPU meanwhile (% of one core): ${oursCpu}`);
    say(`         RSS max ${round(maxRss / 1024, 1)} MiB; at 25/50/75/100 % of events: ${rssAt.map((kb) => `${round(kb / 1024, 1)}`).join(' / ')} MiB`);
    if (process.env['BENCH_RSS_TRACE']) say(`         RSS each second from the process start (MiB): ${rssTrace.map((kb) => Math.round(kb / 1024)).join(' ')}`);
    // Where the MiB are: V8's heap (used of committed), Buffers and other memory V8 tracks
    // outside it, and the rest of the RSS (code, native libraries and their threads: librdkafka, OpenSSL).
    say(`         of which at 25/50/75/100 %: ${memoryAt.map((m) => (m ? `heap ${m.heapUsed}/${m.heapTotal}, external ${m.external}, native rest ${round(m.rss - m.heapTotal - m.external, 1)}` : '?')).join(' | ')} MiB`);

    // --- limit B: Kafka's ProducerPerformance --------------------------------------------
    const txMs = intEnv('BENCH_TX_MS', cadenceMs);
    const recordSize = size.value + size.key;
    const limitB = await producerPerformance({ broker: config.kafka.brokers[0]!, topic: perfTopic, records: N, recordSize, transactionMs: txMs, transactionalId: `${tag}-perf` });

    const limit = Math.min(limitA, limitB);
    const ratio = ours / limit;
    say(`ratio ours / min(limits) = ${round(ratio, 2)} (bound by ${limitA <= limitB ? 'pg_recvlogical' : 'Kafka producer'})`);
    say(JSON.stringify({
      events: N,
      events_per_s: Math.round(ours),
      limit_pg_recvlogical: Math.round(limitA),
      limit_producer_perf: Math.round(limitB),
      ratio: round(ratio, 3),
      max_rss_mb: round(maxRss / 1024, 1),
      // What contention changes least (start-up included): steer by it on a shared machine.
      capturer_cpu_s_per_100k: cpu === null ? null : round((cpu * 100_000) / N, 2),
    }));
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    if (recv && recv.exitCode === null) {
      recv.kill('SIGKILL');
      await exited(recv);
    }
    for (const s of [slot, recvSlot]) await db.query('SELECT pg_drop_replication_slot($1)', [s]).catch(() => {});
    await db.query(`DROP PUBLICATION IF EXISTS ${publication}`).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await db.end();
    await admin.deleteTopics({ topics: [`${tag}.changes`, `${tag}.checkpoints`, `${tag}.dlq`, perfTopic] }).catch(() => {});
    await admin.deleteGroups([checkpointGroupOf(config)]).catch(() => {});
    await admin.disconnect();
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface MemorySplit {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

/** The capturer's own memory figures (MiB), from prom-client's default metrics on its /metrics. */
async function memorySplit(url: string): Promise<MemorySplit | null> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(2000) })).text();
    const mib = (name: string): number => round(Number(new RegExp(`^streamctl_${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN) / 2 ** 20, 1);
    return { rss: mib('process_resident_memory_bytes'), heapUsed: mib('nodejs_heap_size_used_bytes'), heapTotal: mib('nodejs_heap_size_total_bytes'), external: mib('nodejs_external_memory_bytes') };
  } catch {
    return null;
  }
}

/** Builds the first changes of the slot (peeked, not consumed) into events, as the capturer does, and measures them. */
async function sampleSizes(db: import('pg').Client, slot: string, publication: string, config: Config) {
  const source = { pipeline: config.pipeline.id, db: config.postgres.database, slot: `streamctl_${config.pipeline.id}` };
  let value = 0;
  let key = 0;
  let row = 0;
  let sample = 0;
  await forEachSlotEvent(db, { slot, publication, source, peek: true, limit: 2000 }, (event) => {
    value += Buffer.byteLength(JSON.stringify(event));
    key += Buffer.byteLength(recordKey(event.schema, event.table, event.key));
    row += Buffer.byteLength(JSON.stringify(event.after));
    sample++;
  });
  if (sample === 0) throw new Error('no change to sample in the slot');
  return { value: Math.round(value / sample), key: Math.round(key / sample), row: Math.round(row / sample), sample };
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
