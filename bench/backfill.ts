/**
 * Backfill throughput into Kafka, beside two limits measured in the same run on the same rows:
 *  - COPY (SELECT * FROM t ORDER BY key) TO STDOUT through psql into /dev/null: how fast
 *    PostgreSQL reads and prints the rows in key order;
 *  - Kafka's ProducerPerformance writing as many records of the same average size (key +
 *    value of our events), acks=all, in transactions as long as our chunks took.
 * Ours is `streamctl backfill --table t`, timed from process start to exit (start-up
 * included), with its peak RSS sampled every 200 ms. It runs bin/streamctl as a program, with
 * the node flags its launcher gives, as `streamctl` runs when installed (npm's bin link, PATH,
 * Docker's ENTRYPOINT): before, the bench ran `node bin/streamctl` without them, a process no
 * user runs (its young generation three times as large: +40-50 MiB RSS).
 *
 * Figures only, never assertions. The last stdout line is one JSON object.
 * Environment: BENCH_ROWS (3000000), BENCH_CHUNK_SIZE (10000), BENCH_BACKFILL_NODE_ARGS (node flags for the
 * backfill process only, space-separated, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
import { nodeFlagsOf, programSpawn } from '../src/core/program-launch.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { KafkaConsumer as NativeConsumer, Message } from '@confluentinc/kafka-javascript';
import { KafkaConsumer, nativeCall } from '../src/core/clients/librdkafka.js';
import { endOffsets, kafkaClient, nativeSettingsOf, type Kafka } from '../src/core/clients/rdkafka.js';
import { makePgClient } from '../src/core/clients/postgres.js';
import { backfillGroup } from '../src/core/backfill/kafka-writer.js';
import { loadConfig, type Config } from '../src/core/config/index.js';
import { silentLogger } from '../src/core/logger.js';
import { exited, intEnv, producerPerformance, round, rssKb, runAsync, say } from './lib.js';
import { cpuMark, cpuSince, load, ROOT, stackSummary } from './machine.js';

const BIN = path.join(ROOT, 'bin/streamctl');
const N = intEnv('BENCH_ROWS', 3_000_000);
const CHUNK = intEnv('BENCH_CHUNK_SIZE', 10_000);
const PSQL = '/usr/lib/postgresql/15/bin/psql';

/** CPU seconds of this process's reaped children (the backfill, once it has exited). */
function reapedChildSeconds(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ').map(Number);
  return (f[13]! + f[14]!) / 100;
}

async function main(): Promise<void> {
  const tag = `benchbf_${randomBytes(3).toString('hex')}`;
  const table = `${tag}_orders`;
  const perfTopic = `${tag}.perf`;
  const env: NodeJS.ProcessEnv = { STREAMCTL_PIPELINE_ID: tag, STREAMCTL_PIPELINE_TOPIC_PREFIX: tag, STREAMCTL_METRICS_PORT: '0', STREAMCTL_LOG_LEVEL: 'info' };
  const config: Config = loadConfig({ env });
  const db = makePgClient(config.postgres);
  await db.connect();
  const kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
  const admin = kafka.admin();
  await admin.connect();
  let child: ChildProcess | null = null;
  let run_id = '';

  say(`streamctl backfill bench: ${N} rows, chunks of ${CHUNK}`);
  say(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${round(os.totalmem() / 2 ** 30, 1)} GiB; ` +
    `shared with the local stack: ${stackSummary()}; and with any other test run on the same stack (load avg ${load()})`);
  try {
    // --- prepare -------------------------------------------------------------------------
    const prepStarted = performance.now();
    await db.query(`
      CREATE TABLE ${table} (
        id int8 PRIMARY KEY, customer_id int8 NOT NULL, status text NOT NULL, amount numeric(12,2),
        quantity int4, score float8, active bool, tags text[], attrs jsonb, ref uuid,
        created_at timestamptz NOT NULL, note text)`);
    for (let done = 0; done < N; done += 500_000) {
      await db.query(
        `INSERT INTO ${table}
         SELECT g, 100000 + (g * 7919) % 900000, (ARRAY['new','paid','shipped','delivered','cancelled'])[1 + g % 5],
                round((random() * 1000)::numeric, 2), 1 + g % 9, random(), g % 3 <> 0,
                ARRAY['tag' || (g % 11), 'tag' || (g % 7)],
                jsonb_build_object('source', 'web', 'campaign', 'spring-' || (g % 13), 'items', g % 5 + 1),
                gen_random_uuid(), now() - (g % 86400) * interval '1 second', 'order note ' || md5(g::text)
         FROM generate_series($1::int8, $2::int8) g`,
        [done + 1, Math.min(N, done + 500_000)],
      );
    }
    await db.query(`VACUUM ANALYZE ${table}`);
    const { rows: sizeRows } = await db.query<{ size: string }>(`SELECT pg_size_pretty(pg_total_relation_size('${table}')) AS size`);
    say(`prepared: ${N} rows (${sizeRows[0]!.size}) in ${round((performance.now() - prepStarted) / 1000, 1)} s`);

    // --- limit A: COPY ... TO STDOUT ------------------------------------------------------
    let mark = cpuMark();
    const copyStarted = performance.now();
    const copy = await runAsync('bash', ['-c', `"${PSQL}" -X -q -h ${config.postgres.host} -p ${config.postgres.port} -U ${config.postgres.user} -d ${config.postgres.database} ` +
      `-c "COPY (SELECT * FROM ${table} ORDER BY id) TO STDOUT" | wc -c`], { PGPASSWORD: config.postgres.password });
    const copySeconds = (performance.now() - copyStarted) / 1000;
    if (copy.code !== 0) throw new Error(`COPY failed: ${copy.stderr}`);
    const limitCopy = N / copySeconds;
    say(`limit A  COPY (SELECT * ORDER BY id) TO STDOUT: ${round(copySeconds, 2)} s, ${Math.round(limitCopy)} rows/s (${round(Number(copy.stdout.trim()) / 2 ** 20, 1)} MiB of text)`);
    say(`         CPU meanwhile (% of one core): ${cpuSince(mark, 'psql')}`);

    // --- ours ----------------------------------------------------------------------------
    mark = cpuMark();
    const childCpuBefore = reapedChildSeconds();
    const oursStarted = performance.now();
    const launch = programSpawn(BIN, ['backfill', '--table', `public.${table}`, '--chunk-size', String(CHUNK), '--json'], (process.env['BENCH_BACKFILL_NODE_ARGS'] ?? '').split(' ').filter(Boolean));
    child = spawn(launch.command, launch.args, { env: { ...process.env, ...env, ...launch.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = child.pid!;
    let out = '';
    let log = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    let maxRss = 0;
    const samples: number[] = [];
    let nodeFlags = null as string[] | null;
    const rssTimer = setInterval(() => {
      const kb = rssKb(pid);
      if (kb !== null) {
        maxRss = Math.max(maxRss, kb);
        samples.push(kb);
      }
      // Once the launcher has exec'd node (the same pid): the flags it gave.
      if (nodeFlags === null || nodeFlags.length === 0) nodeFlags = nodeFlagsOf(pid);
    }, 200);
    const code = await exited(child);
    const oursSeconds = (performance.now() - oursStarted) / 1000;
    clearInterval(rssTimer);
    const oursCpu = cpuSince(mark, 'streamctl backfill');
    const oursCpuSeconds = reapedChildSeconds() - childCpuBefore;
    child = null;
    if (code !== 0) throw new Error(`backfill exited ${code}: ${log.slice(-2000)}`);
    const summary = JSON.parse(out.trim().split('\n').pop()!) as { run: string; rows: number; chunks: number; seconds: number; rowsPerSecond: number };
    run_id = summary.run;
    if (summary.rows !== N) say(`warning: the backfill wrote ${summary.rows} rows, expected ${N}`);
    const ours = N / oursSeconds;
    const q = (f: number) => samples.length === 0 ? 0 : samples[Math.min(samples.length - 1, Math.floor(f * samples.length))]!;
    say(`ours     node ${nodeFlags === null ? '(flags unread)' : nodeFlags.join(' ')} bin/streamctl backfill (bin/streamctl's launcher${process.env['BENCH_BACKFILL_NODE_ARGS'] ? ' and BENCH_BACKFILL_NODE_ARGS' : ''})`);
    say(`ours     streamctl backfill: ${round(oursSeconds, 2)} s from process start, ${Math.round(ours)} rows/s ` +
      `(${Math.round(summary.rowsPerSecond)} rows/s by its own clock, ${summary.chunks} chunks, one Kafka transaction each)`);
    say(`         CPU meanwhile (% of one core): ${oursCpu}`);
    say(`         the backfill process: ${round(oursCpuSeconds, 1)} CPU s, ${round((oursCpuSeconds * 100_000) / N, 3)} CPU s per 100k rows`);
    say(`         RSS max ${round(maxRss / 1024, 1)} MiB; at 25/50/75/100 % of the run: ${[0.25, 0.5, 0.75, 0.999].map((f) => round(q(f) / 1024, 1)).join(' / ')} MiB`);

    // Average record size, from the records we wrote.
    const sizes = await sampleRecordSizes(kafka, `${tag}.changes`);
    say(`record size: value ${sizes.value} B, key ${sizes.key} B on average (sample of ${sizes.sample})`);

    // --- limit B: Kafka's ProducerPerformance --------------------------------------------
    const txMs = Math.max(1, Math.round((summary.seconds * 1000) / Math.max(1, summary.chunks)));
    const recordSize = sizes.value + sizes.key;
    const limitPerf = await producerPerformance({ broker: config.kafka.brokers[0]!, topic: perfTopic, records: N, recordSize, transactionMs: txMs, transactionalId: `${tag}-perf` });

    const limit = Math.min(limitCopy, limitPerf);
    const ratio = ours / limit;
    say(`ratio ours / min(limits) = ${round(ratio, 2)} (bound by ${limitCopy <= limitPerf ? 'COPY' : 'Kafka producer'})`);
    say(JSON.stringify({
      rows: N,
      rows_per_s: Math.round(ours),
      limit_copy: Math.round(limitCopy),
      limit_producer_perf: Math.round(limitPerf),
      ratio: round(ratio, 3),
      max_rss_mb: round(maxRss / 1024, 1),
      cpu_s_per_100k: round((oursCpuSeconds * 100_000) / N, 3),
    }));
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await db.end();
    await admin.deleteTopics({ topics: [`${tag}.changes`, `${tag}.checkpoints`, `${tag}.dlq`, perfTopic] }).catch(() => {});
    if (run_id) await admin.deleteGroups([backfillGroup(config, run_id)]).catch(() => {});
    await admin.disconnect();
  }
}

/** Mean key and value sizes of the first 2,000 records (a native consumer, partitions assigned at 0, no group left behind). */
async function sampleRecordSizes(kafka: Kafka, topic: string): Promise<{ value: number; key: number; sample: number }> {
  const admin = kafka.admin();
  await admin.connect();
  const partitions = await endOffsets(admin, topic).finally(() => admin.disconnect());
  const consumer: NativeConsumer = new KafkaConsumer({ ...nativeSettingsOf(kafka).settings, 'group.id': `bench-sample-${randomBytes(4).toString('hex')}`, 'enable.auto.commit': false } as never, {});
  await nativeCall((done) => consumer.connect({ timeout: 10_000 }, (err) => done(err)));
  consumer.assign(partitions.map((p) => ({ topic, partition: p.partition, offset: 0 })));
  let value = 0;
  let key = 0;
  let sample = 0;
  try {
    while (sample < 2000) {
      const batch = await nativeCall<Message[]>((done) => consumer.consume(1000, done));
      for (const m of batch.slice(0, 2000 - sample)) {
        value += m.value?.length ?? 0;
        key += m.key?.length ?? 0;
        sample++;
      }
    }
  } finally {
    await nativeCall((done) => consumer.disconnect((err) => done(err))).catch(() => {});
  }
  return { value: Math.round(value / sample), key: Math.round(key / sample), sample };
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
