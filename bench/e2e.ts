/**
 * End-to-end latency at a fixed offered rate: PostgreSQL commit -> sink acknowledgement,
 * per sink, p50/p95/p99, and the rate achieved.
 *
 * A load generator writes small transactions (inserts and updates) into one table at a
 * fixed rate, open loop: it does not slow down when the pipeline falls behind (it only
 * falls behind itself when PostgreSQL cannot take the writes, which it reports).
 * `streamctl stream` (capture + deliver, from dist, as an operator runs it) carries them to
 * Redis, BigQuery (the emulator) and HTTP.
 *
 * How each sink is measured, and how exactly:
 *  - HTTP, exactly: an in-process HttpReceiver stamps each event's arrival (Date.now(), ms)
 *    and subtracts the event's commit_ts (PostgreSQL's commit timestamp; same machine, same
 *    clock). It includes the receiver's own event loop, shared with this generator.
 *  - Redis and BigQuery: `processing_latency_seconds` from the stream's /metrics: the
 *    deliverer observes (its Date.now() at the sink's acknowledgement) - commit_ts for each
 *    event. Scraped at the start and end of the measured window; quantiles interpolated
 *    within a bucket as Prometheus' histogram_quantile does, so they are exact only to the
 *    bucket they fall in (printed: 10 ms wide up to 50 ms, 25 ms up to 200 ms). The HTTP
 *    sink's histogram is printed beside its exact figures as a check of that method.
 *  - Redis, independently: every 20th transaction the generator polls Redis every 5 ms for
 *    the row it wrote, from its COMMIT's return (commit_ts is a little earlier). A sample,
 *    5 ms resolution; a check of the histogram, not the headline.
 *
 * The first BENCH_WARMUP_SECONDS are load but not measurement (JIT, connections, the BigQuery
 * emulator's first inserts). Figures only, never assertions. Last stdout line: one JSON
 * object with `rate`, `p50_ms`, `p95_ms`, `p99_ms` (Redis) and a `sinks` breakdown.
 *
 * Environment (or flags --rate, --seconds): BENCH_RATE (5000 events/s), BENCH_SECONDS (60,
 * measured), BENCH_WARMUP_SECONDS (5), BENCH_TX_ROWS (50 changes per transaction),
 * BENCH_CONNECTIONS (4), BENCH_DRAIN_SECONDS (120: how long to wait for the sinks after),
 * BENCH_STREAM_NODE_ARGS (node flags for streamctl only, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`),
 * BENCH_SINKS (redis,bigquery,http: which sinks run), BENCH_LAYOUT (one: `streamctl stream`
 * with capture and every sink in one process, as the issue asks; split: `--role capture` and
 * one `--role deliver` process per sink), BENCH_KAFKA_PROBE (set: also time commit -> Kafka).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Consumer } from 'kafkajs';
import type pg from 'pg';
import { makeBigQuery } from '../src/core/clients/bigquery.js';
import { makeKafka } from '../src/core/clients/kafka.js';
import { makePgClient } from '../src/core/clients/postgres.js';
import { makeRedis } from '../src/core/clients/redis.js';
import { derivedNames, loadConfig, type Config } from '../src/core/config/index.js';
import { canonicalJson } from '../src/core/event/identity.js';
import { silentLogger } from '../src/core/logger.js';
import { HttpReceiver } from '../src/receiver/server.js';
import { cpuMark, cpuSeconds, cpuSince, load, ROOT } from './machine.js';

const ALL_SINKS = ['redis', 'bigquery', 'http'] as const;
type SinkName = (typeof ALL_SINKS)[number];
/** BENCH_SINKS=redis,http runs only those (to find which one costs what); default all three. */
const SINKS: SinkName[] = (process.env['BENCH_SINKS'] ?? ALL_SINKS.join(',')).split(',').map((s) => {
  if (!(ALL_SINKS as readonly string[]).includes(s)) throw new Error(`BENCH_SINKS: unknown sink '${s}'`);
  return s as SinkName;
});

const RATE = setting('rate', 'BENCH_RATE', 5000);
const SECONDS = setting('seconds', 'BENCH_SECONDS', 60);
const WARMUP = setting('warmup', 'BENCH_WARMUP_SECONDS', 5);
const TX_ROWS = setting('tx-rows', 'BENCH_TX_ROWS', 50);
const CONNECTIONS = setting('connections', 'BENCH_CONNECTIONS', 4);
const DRAIN = setting('drain', 'BENCH_DRAIN_SECONDS', 120);
const BIN = path.join(ROOT, 'bin/streamctl');
const LAYOUT = process.env['BENCH_LAYOUT'] ?? 'one';
if (LAYOUT !== 'one' && LAYOUT !== 'split') throw new Error(`BENCH_LAYOUT must be 'one' or 'split', got '${LAYOUT}'`);
const HMAC_KEY = 'bench-e2e-key-0123456789abcdef';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (v: number, digits = 0) => Math.round(v * 10 ** digits) / 10 ** digits;
const say = (line: string) => process.stdout.write(`${line}\n`);

/** `--name N` on the command line, else the environment variable, else the default. */
function setting(flag: string, env: string, fallback: number): number {
  const at = process.argv.indexOf(`--${flag}`);
  const raw = at >= 0 ? process.argv[at + 1] : process.env[env];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${flag} / ${env} must be a positive number, got '${raw}'`);
  return v;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

// --- quantiles -----------------------------------------------------------------------------

/** Exact quantile of sorted values (nearest rank). */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

interface Histogram {
  /** upper bound (s) -> cumulative count */
  buckets: Map<number, number>;
  count: number;
  sum: number;
}

/** processing_latency_seconds and events_processed_total per sink, from a /metrics text. */
function parseMetrics(text: string): { latency: Map<string, Histogram>; processed: Map<string, number>; plain: Map<string, number> } {
  const latency = new Map<string, Histogram>();
  const processed = new Map<string, number>();
  // Unlabelled series (the capturer's commit latency and batch size sums and counts).
  const plain = new Map<string, number>();
  for (const m of text.matchAll(/^(streamctl_capture_\w+_(?:sum|count)) (\S+)$/gm)) plain.set(m[1]!, (plain.get(m[1]!) ?? 0) + Number(m[2]));
  const hist = (sink: string) => {
    let h = latency.get(sink);
    if (!h) latency.set(sink, (h = { buckets: new Map(), count: 0, sum: 0 }));
    return h;
  };
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const [, name, labels, value] = m as unknown as [string, string, string, string];
    const sink = /sink="([^"]+)"/.exec(labels)?.[1];
    if (!sink) continue;
    if (name === 'processing_latency_seconds_bucket') {
      const le = /le="([^"]+)"/.exec(labels)![1]!;
      hist(sink).buckets.set(le === '+Inf' ? Infinity : Number(le), Number(value));
    } else if (name === 'processing_latency_seconds_count') hist(sink).count = Number(value);
    else if (name === 'processing_latency_seconds_sum') hist(sink).sum = Number(value);
    else if (name === 'events_processed_total') processed.set(sink, (processed.get(sink) ?? 0) + Number(value));
  }
  return { latency, processed, plain };
}

function histogramDelta(after: Histogram | undefined, before: Histogram | undefined): Histogram {
  const buckets = new Map<number, number>();
  for (const [le, n] of after?.buckets ?? []) buckets.set(le, n - (before?.buckets.get(le) ?? 0));
  return { buckets, count: (after?.count ?? 0) - (before?.count ?? 0), sum: (after?.sum ?? 0) - (before?.sum ?? 0) };
}

/** Prometheus' histogram_quantile: linear within the bucket. Also returns the bucket's bounds. */
function histogramQuantile(h: Histogram, q: number): { ms: number; bucket: [number, number] } {
  const bounds = [...h.buckets.keys()].sort((a, b) => a - b);
  const rank = q * h.count;
  let lower = 0;
  let below = 0;
  for (const le of bounds) {
    const cumulative = h.buckets.get(le)!;
    if (cumulative >= rank) {
      if (le === Infinity) return { ms: lower * 1000, bucket: [lower * 1000, Infinity] };
      const inBucket = cumulative - below;
      const ms = (lower + (le - lower) * (inBucket > 0 ? (rank - below) / inBucket : 1)) * 1000;
      return { ms, bucket: [lower * 1000, le * 1000] };
    }
    lower = le;
    below = cumulative;
  }
  return { ms: NaN, bucket: [NaN, NaN] };
}

// --- main ----------------------------------------------------------------------------------

interface SinkFigures {
  method: string;
  events: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms?: number;
  p99_bucket_ms?: [number, number];
  delivered_per_s: number;
}

async function main(): Promise<void> {
  const tag = `e2e_${randomBytes(3).toString('hex')}`;
  const table = `${tag}_orders`;
  const httpLatencies: number[] = [];
  let windowStart = Infinity;
  let windowEnd = Infinity;
  let httpArrivals = 0;
  const receiver = new HttpReceiver({
    hmacKey: HMAC_KEY,
    recentLimit: 1,
    onAccepted: ({ body }) => {
      const arrived = Date.now();
      httpArrivals++;
      const committed = Date.parse((body as { commit_ts?: string }).commit_ts ?? '');
      if (committed >= windowStart && committed < windowEnd) httpLatencies.push(arrived - committed);
    },
  });
  const { port: receiverPort } = await receiver.listen(0);
  const env: Record<string, string> = {
    STREAMCTL_PIPELINE_ID: tag,
    STREAMCTL_PIPELINE_TOPIC_PREFIX: tag,
    STREAMCTL_POSTGRES_TABLES: `public.${table}`,
    STREAMCTL_LOG_LEVEL: 'info',
    STREAMCTL_SINKS_REDIS_KEY_PREFIX: `${tag}:`,
    STREAMCTL_SINKS_BIGQUERY_DATASET: tag,
    STREAMCTL_SINKS_HTTP_URL: `http://127.0.0.1:${receiverPort}/events`,
    STREAMCTL_SINKS_HTTP_HMAC_KEY: HMAC_KEY,
    STREAMCTL_SINKS_HTTP_HMAC_KEY_FILE: '',
    ...Object.fromEntries(ALL_SINKS.filter((s) => !SINKS.includes(s)).map((s) => [`STREAMCTL_SINKS_${s.toUpperCase()}_ENABLED`, 'false'])),
  };
  const config: Config = loadConfig({ env });
  const kafka = makeKafka(config.kafka, silentLogger, { retries: 10 });
  const admin = kafka.admin();
  await admin.connect();
  const redis = makeRedis(config.sinks.redis, silentLogger);
  await redis.connect();
  const setup = makePgClient(config.postgres);
  await setup.connect();
  const pool: pg.Client[] = [];
  const children: Array<{ name: string; child: ChildProcess; port: number; logFile: string; text: () => string; ready: (t: string) => boolean }> = [];

  say(`streamctl e2e bench (layout ${LAYOUT}): offered ${RATE} events/s for ${SECONDS} s measured (+${WARMUP} s warm-up), transactions of ${TX_ROWS} changes ` +
    `(80% inserts, 20% updates), ${CONNECTIONS} PostgreSQL connections; sinks redis, bigquery (emulator), http (in-process receiver)`);
  say(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${round(os.totalmem() / 2 ** 30, 1)} GiB, shared by PostgreSQL, ` +
    `Kafka, Redis, the BigQuery emulator (all serving this bench), the stack's own HTTP receiver, this process (generator + receiver), ` +
    `streamctl, and whatever else runs (other engineers' tests: load avg ${load()} at start; CPU per process below)`);

  try {
    await setup.query(`CREATE TABLE ${table} (id bigserial PRIMARY KEY, customer int8 NOT NULL, status text NOT NULL,
      amount numeric(12,2), attrs jsonb, updated timestamptz NOT NULL DEFAULT now())`);
    for (let i = 0; i < CONNECTIONS; i++) {
      const c = makePgClient(config.postgres);
      await c.connect();
      pool.push(c);
    }

    // LAYOUT one: `streamctl stream` (capture and every sink in one process, the default
    // deployment). LAYOUT split: `--role capture` plus one `--role deliver` per sink, each its
    // own process (the same binary and config, sinks switched off per process).
    const nodeArgs = (process.env['BENCH_STREAM_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
    const plan =
      LAYOUT === 'one'
        ? [{ name: 'stream', role: 'all', sinks: SINKS }]
        : [{ name: 'capture', role: 'capture', sinks: [] as SinkName[] }, ...SINKS.map((sink) => ({ name: `deliver-${sink}`, role: 'deliver', sinks: [sink] }))];
    for (const p of plan) {
      const port = await freePort();
      const logFile = path.join(os.tmpdir(), `streamctl-bench-e2e-${tag}-${p.name}.log`);
      const off = ALL_SINKS.filter((s) => !p.sinks.includes(s)).map((s) => [`STREAMCTL_SINKS_${s.toUpperCase()}_ENABLED`, 'false']);
      const child = spawn(process.execPath, [...nodeArgs, BIN, 'stream', '--role', p.role], {
        env: { ...process.env, ...env, ...(p.role === 'capture' ? {} : Object.fromEntries(off)), STREAMCTL_METRICS_PORT: String(port) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const log = createWriteStream(logFile);
      let text = '';
      child.stderr?.on('data', (d: Buffer) => {
        log.write(d);
        if (text.length < 200_000) text += d.toString();
      });
      const ready = (t: string) => (p.role === 'deliver' || t.includes('capture starting')) && p.sinks.every((s) => t.includes(`sink delivering sink=${s}`));
      children.push({ name: p.name, child, port, logFile, text: () => text, ready });
    }
    const started = performance.now();
    for (;;) {
      const dead = children.find((c) => c.child.exitCode !== null);
      if (dead) throw new Error(`${dead.name} exited with ${dead.child.exitCode}: ${dead.text().slice(-2000)}`);
      if (children.every((c) => c.ready(c.text()))) break;
      if (performance.now() - started > 120_000) throw new Error(`streamctl did not start: ${children.map((c) => c.text().slice(-500)).join('\n')}`);
      await sleep(100);
    }
    say(`streamctl ready in ${round((performance.now() - started) / 1000, 1)} s: ${children.map((c) => `${c.name} (log ${c.logFile})`).join(', ')}`);
    const scrape = async () => {
      const texts = await Promise.all(children.map(async (c) => (await fetch(`http://127.0.0.1:${c.port}/metrics`)).text()));
      return parseMetrics(texts.join('\n'));
    };

    // Optional: where the time goes before the sinks. A read_committed consumer of the changes
    // topic in this process: record timestamp (the capturer's send) - commit_ts, and arrival
    // here (after the Kafka transaction's commit) - commit_ts. It costs this process CPU.
    const probe = { produced: [] as number[], visible: [] as number[] };
    let probeConsumer: Consumer | null = null;
    if (process.env['BENCH_KAFKA_PROBE']) {
      probeConsumer = kafka.consumer({ groupId: `${tag}-probe`, readUncommitted: false });
      await probeConsumer.connect();
      await probeConsumer.subscribe({ topic: derivedNames(config).changesTopic, fromBeginning: false });
      await probeConsumer.run({
        eachBatch: async ({ batch }) => {
          const now = Date.now();
          for (const m of batch.messages) {
            const text = m.value?.toString() ?? '';
            const at = text.indexOf('"commit_ts":"');
            const committed = at < 0 ? NaN : Date.parse(text.slice(at + 13, text.indexOf('"', at + 13)));
            if (!(committed >= windowStart && committed < windowEnd)) continue;
            probe.produced.push(Number(m.timestamp) - committed);
            probe.visible.push(now - committed);
          }
        },
      });
    }

    // --- the load ------------------------------------------------------------------------
    const interval = (1000 * TX_ROWS) / RATE; // ms between transactions
    const total = Math.round(((SECONDS + WARMUP) * RATE) / TX_ROWS);
    const updates = Math.round(TX_ROWS * 0.2);
    const inserts = TX_ROWS - updates;
    let maxId = 0;
    let committedEvents = 0;
    let windowEvents = 0;
    let skipped = 0;
    const free = [...pool];
    const polls: number[] = [];
    const inFlightPolls = new Set<Promise<void>>();

    const pollRedis = async (id: number, since: number) => {
      const key = `${tag}:row:public.${table}:${canonicalJson({ id: String(id) })}`;
      const deadline = since + 30_000;
      while (Date.now() < deadline) {
        if ((await redis.exists(key)) === 1) {
          polls.push(Date.now() - since);
          return;
        }
        await sleep(5);
      }
    };

    const transaction = async (c: pg.Client, n: number) => {
      const ids: string[] = [];
      if (maxId > 1000) for (let u = 0; u < updates; u++) ids.push(String(1 + Math.floor(Math.random() * maxId)));
      const r = await c.query(
        `WITH ins AS (
           INSERT INTO ${table} (customer, status, amount, attrs)
           SELECT (random() * 1e6)::int8, 'new', round((random() * 1000)::numeric, 2), jsonb_build_object('n', g, 'src', 'bench')
           FROM generate_series(1, $1::int) g RETURNING id),
         upd AS (
           UPDATE ${table} SET status = 'paid', amount = amount + 1, updated = now() WHERE id = ANY($2::int8[]) RETURNING id)
         SELECT (SELECT max(id) FROM ins) AS last, (SELECT count(*) FROM ins) + (SELECT count(*) FROM upd) AS changed`,
        [ids.length === 0 ? TX_ROWS : inserts, ids],
      );
      const done = Date.now();
      const row = r.rows[0] as { last: string; changed: string };
      const changed = Number(row.changed);
      committedEvents += changed;
      if (done >= windowStart && done < windowEnd) windowEvents += changed;
      maxId = Math.max(maxId, Number(row.last));
      // A sample for the independent Redis check: the transaction's last inserted row.
      if (n % 20 === 0 && done >= windowStart && done < windowEnd) {
        const p = (SINKS.includes('redis') ? pollRedis(Number(row.last), done) : Promise.resolve()).finally(() => inFlightPolls.delete(p));
        inFlightPolls.add(p);
      }
    };

    const loadStarted = Date.now();
    windowStart = loadStarted + WARMUP * 1000;
    windowEnd = windowStart + SECONDS * 1000;
    let before: Awaited<ReturnType<typeof scrape>> | null = null;
    let mark = cpuMark();
    let ownCpu: number[] = [];
    const running = new Set<Promise<void>>();
    for (let n = 0; n < total; n++) {
      const due = loadStarted + n * interval;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      if (before === null && Date.now() >= windowStart) {
        before = await scrape();
        mark = cpuMark();
        ownCpu = children.map((c) => cpuSeconds(c.child.pid!) ?? NaN);
      }
      const c = free.pop();
      if (!c) {
        // Every connection is still busy: PostgreSQL (or this process) cannot keep the pace.
        skipped++;
        continue;
      }
      const p = transaction(c, n)
        .finally(() => {
          free.push(c);
          running.delete(p);
        });
      running.add(p);
    }
    await Promise.all(running);
    const loadSeconds = (Date.now() - loadStarted) / 1000;
    const cpu = cpuSince(mark, 'children');
    // Each streamctl process's own CPU over the window: near 100 % of one core means its one
    // event loop was saturated (Node runs JavaScript on one thread per process).
    const windowSeconds = (Date.now() - windowStart) / 1000;
    const streamCpu = children.map((c, i) => `${c.name} ${Math.round((100 * ((cpuSeconds(c.child.pid!) ?? NaN) - (ownCpu[i] ?? NaN))) / windowSeconds)}%`).join(', ');
    const loadAtEnd = load();
    if (before === null) before = await scrape();
    const atEnd = await scrape();
    say(`load: ${committedEvents} changes committed in ${round(loadSeconds, 1)} s; in the measured window ${windowEvents} = ` +
      `${Math.round(windowEvents / SECONDS)} events/s` + (skipped ? `; ${skipped} transactions skipped (all ${CONNECTIONS} connections busy)` : ''));
    say(`CPU during the measured window (% of one core): streamctl ${streamCpu}; by command: ${cpu} ` +
      `(by command includes exited children's whole lifetimes, other engineers' test processes too); load avg ${loadAtEnd}`);

    // --- drain: every sink has every event ------------------------------------------------
    const drainStarted = Date.now();
    let after = atEnd;
    while (Date.now() - drainStarted < DRAIN * 1000) {
      after = await scrape();
      if (SINKS.every((s) => (after.processed.get(s) ?? 0) >= committedEvents)) break;
      const dead = children.find((c) => c.child.exitCode !== null);
      if (dead) throw new Error(`${dead.name} exited with ${dead.child.exitCode}`);
      await sleep(500);
    }
    await Promise.all(inFlightPolls);
    const behind = SINKS.filter((s) => (after.processed.get(s) ?? 0) < committedEvents);
    const d = (name: string) => (atEnd.plain.get(name) ?? 0) - (before!.plain.get(name) ?? 0);
    const commits = d('streamctl_capture_commit_latency_seconds_count');
    say(`capture during the window: ${commits} Kafka transactions (one every ${round((SECONDS * 1000) / Math.max(1, commits))} ms), ` +
      `${Math.round(d('streamctl_capture_batch_events_sum') / Math.max(1, commits))} events each, ` +
      `${round((1000 * d('streamctl_capture_commit_latency_seconds_sum')) / Math.max(1, commits), 1)} ms to write and commit each on average`);
    say(`drained in ${round((Date.now() - drainStarted) / 1000, 1)} s after the load stopped` +
      (behind.length ? `; NOT drained within ${DRAIN} s: ${behind.map((s) => `${s} ${after.processed.get(s) ?? 0}/${committedEvents}`).join(', ')}` : ''));

    // --- figures --------------------------------------------------------------------------
    const sinks = {} as Partial<Record<SinkName, SinkFigures>>;
    for (const sink of SINKS) {
      const h = histogramDelta(after.latency.get(sink), before.latency.get(sink));
      const q = (x: number) => histogramQuantile(h, x);
      // Delivered during the window: acknowledged between the two scrapes around it.
      const delivered = (atEnd.processed.get(sink) ?? 0) - (before.processed.get(sink) ?? 0);
      sinks[sink] = {
        method: 'processing_latency_seconds histogram (deliverer clock at acknowledgement - commit_ts), interpolated in its bucket',
        events: h.count,
        p50_ms: round(q(0.5).ms, 1),
        p95_ms: round(q(0.95).ms, 1),
        p99_ms: round(q(0.99).ms, 1),
        p99_bucket_ms: q(0.99).bucket,
        delivered_per_s: Math.round(delivered / SECONDS),
      };
    }
    const histogramHttp = sinks.http;
    const sorted = [...httpLatencies].sort((a, b) => a - b);
    if (histogramHttp) sinks.http = {
      method: 'exact: receiver arrival (Date.now) - commit_ts, per event',
      events: sorted.length,
      p50_ms: quantile(sorted, 0.5),
      p95_ms: quantile(sorted, 0.95),
      p99_ms: quantile(sorted, 0.99),
      max_ms: sorted[sorted.length - 1] ?? NaN,
      delivered_per_s: histogramHttp.delivered_per_s,
    };
    const pollSorted = [...polls].sort((a, b) => a - b);
    if (probeConsumer) {
      await probeConsumer.disconnect();
      const p = (xs: number[]) => {
        const sorted = [...xs].sort((a, b) => a - b);
        return `p50 ${quantile(sorted, 0.5)} ms, p95 ${quantile(sorted, 0.95)} ms, p99 ${quantile(sorted, 0.99)} ms`;
      };
      say(`stage    capture, commit_ts -> record timestamp (capturer's send): ${p(probe.produced)} over ${probe.produced.length} events`);
      say(`stage    Kafka, commit_ts -> visible to a read_committed consumer here: ${p(probe.visible)}`);
    }

    for (const sink of SINKS) {
      const s = sinks[sink]!;
      say(`${sink.padEnd(8)} p50 ${s.p50_ms} ms, p95 ${s.p95_ms} ms, p99 ${s.p99_ms} ms` +
        (s.p99_bucket_ms ? ` (p99 in the bucket ${s.p99_bucket_ms[0]}-${s.p99_bucket_ms[1]} ms)` : `, max ${s.max_ms} ms`) +
        ` over ${s.events} events; delivered ${s.delivered_per_s} events/s during the window; ${s.method}`);
    }
    if (histogramHttp) say(`check    http from the histogram: p50 ${histogramHttp.p50_ms}, p95 ${histogramHttp.p95_ms}, p99 ${histogramHttp.p99_ms} ms ` +
      `(vs exact above: the histogram method's error; it also counts warm-up events acknowledged inside the window)`);
    say(`check    redis by polling (sample of ${pollSorted.length} rows, 5 ms polls, from COMMIT's return): ` +
      `p50 ${quantile(pollSorted, 0.5)} ms, p95 ${quantile(pollSorted, 0.95)} ms, p99 ${quantile(pollSorted, 0.99)} ms`);
    const redisP99 = sinks.redis?.p99_ms ?? NaN;
    say(`aim: Redis p99 < 200 ms at ${RATE} events/s: ${redisP99 < 200 && windowEvents / SECONDS >= RATE * 0.95 ? 'met' : 'MISSED'} ` +
      `(shared machine: PostgreSQL, Kafka, Redis, the BigQuery emulator, the receiver, this generator and streamctl on ${os.cpus().length} cores)`);
    say(
      JSON.stringify({
        rate: Math.round(windowEvents / SECONDS),
        layout: LAYOUT,
        offered_rate: RATE,
        seconds: SECONDS,
        p50_ms: sinks.redis?.p50_ms ?? null,
        p95_ms: sinks.redis?.p95_ms ?? null,
        p99_ms: sinks.redis?.p99_ms ?? null,
        sinks: Object.fromEntries(
          SINKS.map((s) => {
            const f = sinks[s]!;
            return [s, { p50_ms: f.p50_ms, p95_ms: f.p95_ms, p99_ms: f.p99_ms, delivered_per_s: f.delivered_per_s, events: f.events }];
          }),
        ),
        drained: behind.length === 0,
        loadavg: os.loadavg().map((v) => round(v, 2)),
      }),
    );
  } finally {
    for (const { child } of children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited(child);
      clearTimeout(timer);
    }
    for (const c of pool) await c.end().catch(() => {});
    await setup.query('SELECT pg_drop_replication_slot($1)', [`streamctl_${tag}`]).catch(() => {});
    await setup.query(`DROP PUBLICATION IF EXISTS streamctl_${tag}`).catch(() => {});
    await setup.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await setup.end();
    await admin.deleteTopics({ topics: [`${tag}.changes`, `${tag}.checkpoints`, `${tag}.dlq`] }).catch(() => {});
    await admin.deleteGroups([...SINKS.map((s) => derivedNames(config).consumerGroup(s)), `${tag}-probe`]).catch(() => {});
    await admin.disconnect();
    const keys = await redis.keys(`${tag}:*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
    await redis.quit();
    await makeBigQuery(config.sinks.bigquery).dataset(tag).delete({ force: true }).catch(() => {});
    await receiver.close();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
