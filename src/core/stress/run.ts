import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import os from 'node:os';
import type pg from 'pg';
import { makeBigQuery } from '../clients/bigquery.js';
import { kafkaClient, type Admin } from '../clients/rdkafka.js';
import { makePgClient } from '../clients/postgres.js';
import { makeRedis } from '../clients/redis.js';
import { derivedNames, type Config } from '../config/index.js';
import { deliveryLag } from '../delivery/lag.js';
import type { SinkName } from '../sinks/contract.js';
import type { AnySinkPlugin } from '../sinks/plugin.js';
import { SINK_PLUGINS, sinkConfigOf } from '../sinks/registry.js';
import { envNameFor } from '../config/env.js';
import { verifiableSinks } from '../verify/sides.js';
import { EnvironmentNotReadyError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { HttpReceiver } from '../../receiver/server.js';
import { countDeadLetters } from './dlq.js';
import { CpuWindow, loadavg, machineBase } from './machine.js';
import { BigQueryObserver, HttpObserver, RedisObserver, type SinkObserver } from './observers.js';
import { checkCaptured, SpawnedPipeline, type Layout } from './pipeline.js';
import { histogramDelta, parseLatencyHistograms, summaryFromHistogram } from './prom-latency.js';
import { stageReport } from './stages.js';
import { REPORT_SCHEMA_ID, type SinkReport, type StressReport, type TimelinePoint } from './report.js';
import { checkFinalState, persistentDifferences } from './state-check.js';
import { evaluateSlos, describeMiss, type Slo, type SloFigures } from './slo.js';
import { createTableSql, LOAD_COLUMNS, type Workload } from './workload.js';
import { LoadWriter } from './writer.js';
import { sleepUnlessAborted as sleep } from '../timeout.js';
import { quoteIdent, quoteTable } from '../postgres/sql.js';

export const OWN_SCHEMA = 'streamctl_stress';

export interface StressOptions {
  config: Config;
  rate: number;
  durationS: number;
  warmupS: number;
  connections: number;
  txSize: number;
  rowBytes: number;
  workload: Workload;
  keyChangeShare: number;
  toastShare: number;
  toastBytes: number;
  /** schema.name; absent: a table of its own in OWN_SCHEMA, created and dropped. */
  table?: string;
  spawn: boolean;
  layout: Layout;
  /** Sinks under test (enabled ones of the config by default). */
  sinks: SinkName[];
  /** /metrics URLs of the running pipeline's processes: the latency fallback for a sink this command cannot read. */
  metricsUrls?: string[];
  /** Port for the command's own HTTP receiver (0: any free port, with --spawn). */
  httpReceiverPort?: number;
  drainTimeoutS: number;
  /** After the drain, compare the load table's final state in Redis and BigQuery with verify (--no-verify: false). */
  verify: boolean;
  slos: Slo[];
  sloSpec: string;
  killDelivererEveryS?: number;
  bin: string;
  logDir: string;
  /** Node flags for spawned streamctl processes (profiling). */
  nodeArgs?: string[];
  onSample?: (point: TimelinePoint, live: { p99_ms: Record<string, number | null> }) => void;
  onLog?: (message: string) => void;
  signal: AbortSignal;
}

const SAMPLE_MS = 1000;

export async function runStressTest(o: StressOptions): Promise<StressReport> {
  const startedAt = new Date();
  const log = o.onLog ?? (() => {});
  const tag = `st_${Date.now().toString(36)}_${randomBytes(2).toString('hex')}`;
  const ownTable = o.table === undefined;
  const [schema, name] = o.table ? splitTable(o.table) : [OWN_SCHEMA, `load_${tag}`];
  const qualified = quoteTable(schema, name);
  const hmacKey = o.config.sinks.http.hmacKey || randomBytes(24).toString('hex');

  // The config of the pipeline under test: the operator's, or (with --spawn) an isolated one.
  let receiverPort = o.httpReceiverPort;
  const wantReceiver = o.sinks.includes('http') && (o.spawn || receiverPort !== undefined);
  let receiver: HttpReceiver | null = null;
  let httpObserver: HttpObserver | null = null;
  const window = () => ({ from: writer?.measuredFrom ?? Infinity, until: writer?.measuredUntil ?? Infinity });
  let writer: LoadWriter | null = null;
  if (wantReceiver) {
    receiver = new HttpReceiver({ hmacKey, recentLimit: 20, onAccepted: ({ body }) => httpObserver?.accepted(body) });
    receiverPort = (await receiver.listen(receiverPort ?? 0)).port;
  }
  const spawnEnv: Record<string, string> = o.spawn
    ? {
        STREAMCTL_PIPELINE_ID: tag,
        STREAMCTL_PIPELINE_TOPIC_PREFIX: tag,
        STREAMCTL_POSTGRES_TABLES: `${schema}.${name}`,
        STREAMCTL_POSTGRES_SLOT: '',
        STREAMCTL_POSTGRES_PUBLICATION: '',
        STREAMCTL_LOG_LEVEL: 'info',
        STREAMCTL_SINKS_REDIS_KEY_PREFIX: `${tag}:`,
        STREAMCTL_SINKS_BIGQUERY_DATASET: tag,
        STREAMCTL_SINKS_HTTP_URL: `http://127.0.0.1:${receiverPort ?? 1}/events`,
        STREAMCTL_SINKS_HTTP_HMAC_KEY: hmacKey,
        STREAMCTL_SINKS_HTTP_HMAC_KEY_FILE: '',
        ...sinksEnabledEnv(o.sinks),
      }
    : {};
  const config: Config = o.spawn ? pipelineConfig(o.config, tag, `${schema}.${name}`, o.sinks) : o.config;
  const names = derivedNames(config);

  const db = makePgClient(config.postgres);
  const clients: pg.Client[] = [];
  const kafka = kafkaClient(config.kafka, silentLogger, { retries: 5 });
  const admin: Admin = kafka.admin();
  const redis = o.sinks.includes('redis') ? makeRedis(config.sinks.redis, silentLogger) : null;
  const bq = o.sinks.includes('bigquery') ? makeBigQuery(config.sinks.bigquery) : null;
  let pipeline: SpawnedPipeline | null = null;
  let createdTable = false;
  const observers: SinkObserver[] = [];
  const timeline: TimelinePoint[] = [];
  let kills = 0;
  const killed: Array<{ name: string; pid: number; at_s: number }> = [];
  try {
    await db.connect();
    await admin.connect();
    await redis?.connect();

    // --- the table ---------------------------------------------------------------------
    const exists = await db.query('SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [schema, name]);
    if (exists.rows.length === 0) {
      if (!o.spawn && !ownTable) {
        throw new EnvironmentNotReadyError(`the load table ${schema}.${name} does not exist`, [
          `create it: ${createTableSql(`${schema}.${name}`)}`,
          `add ${schema}.${name} to the pipeline's postgres.tables and restart streamctl stream, then run stress-test again`,
        ]);
      }
      if (!o.spawn) await checkCaptured(db, names.publication, { schema, name }); // before creating anything
      await db.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
      await db.query(createTableSql(qualified));
      createdTable = true;
    } else {
      const cols = await db.query<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2', [schema, name]);
      const have = new Set(cols.rows.map((r) => r.column_name));
      const missing = LOAD_COLUMNS.filter((c) => !have.has(c));
      if (missing.length > 0) {
        throw new EnvironmentNotReadyError(`${schema}.${name} is not a stress-test load table: it lacks ${missing.join(', ')}`, [
          `use a table made for the load: ${createTableSql(`${schema}.${name}`)}`,
        ]);
      }
    }
    if (!o.spawn) await checkCaptured(db, names.publication, { schema, name });
    const first = await db.query<{ next: string }>(`SELECT COALESCE(max(id), 0) + 1 AS next FROM ${qualified}`);

    // --- the pipeline --------------------------------------------------------------------
    if (o.spawn) {
      pipeline = new SpawnedPipeline({ bin: o.bin, layout: o.layout, sinks: o.sinks, env: spawnEnv, logDir: o.logDir, tag, freePort, nodeArgs: o.nodeArgs });
      log(`starting streamctl stream (layout ${o.layout}, sinks ${o.sinks.join(', ')}), pipeline ${tag}`);
      await pipeline.start();
      log(`pipeline ready: ${pipeline.processes.map((p) => `${p.name} (log ${p.logFile})`).join(', ')}`);
    }

    // --- observers and the writer -------------------------------------------------------
    for (let i = 0; i < o.connections; i++) {
      const c = makePgClient(config.postgres);
      await c.connect();
      clients.push(c);
    }
    let redisObserver: RedisObserver | null = null;
    writer = new LoadWriter({
      table: qualified,
      rate: o.rate,
      txSize: o.txSize,
      durationS: o.durationS,
      warmupS: o.warmupS,
      firstId: Number(first.rows[0]!.next),
      workload: o.workload,
      rowBytes: o.rowBytes,
      keyChangeShare: o.keyChangeShare,
      toastShare: o.toastShare,
      toastBytes: o.toastBytes,
      onCommit: (changes, intended) => redisObserver?.committed(changes, intended),
    });
    const ledger = writer.ledger;
    if (redis) observers.push((redisObserver = new RedisObserver(redis, ledger, `${config.sinks.redis.keyPrefix}row:${schema}.${name}:`, window)));
    if (bq) {
      const b = config.sinks.bigquery;
      observers.push(new BigQueryObserver(bq, ledger, { projectId: b.projectId, dataset: b.dataset, table: b.table, viewOnce: b.viewOnce, sourceSchema: schema, sourceTable: name }, window));
    }
    if (receiver) observers.push((httpObserver = new HttpObserver(receiver, ledger, window)));

    // --- the run -----------------------------------------------------------------------
    const processes = () => [{ name: 'stress-test (load writer, observers)', pid: process.pid }, ...(pipeline?.processes.map((p) => ({ name: p.name, pid: p.child.pid! })) ?? [])];
    const loadStart = loadavg();
    let cpu: CpuWindow | null = null;
    let lastCommitted = 0;
    let lastSampleAt = Date.now();
    let phase: TimelinePoint['phase'] = 'warmup';
    const sample = async () => {
      const lag = await deliveryLag(admin, config).catch((): Awaited<ReturnType<typeof deliveryLag>> => ({ lag: {}, dlq_depth: 0 }));
      const slot = await db
        .query<{ lag: string | null }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1', [names.slot])
        .catch(() => ({ rows: [] as Array<{ lag: string | null }> }));
      const now = Date.now();
      const committed = ledger.committedEvents;
      const missing: Record<string, number> = {};
      for (const ob of observers) {
        const seen = ob.seen();
        if (seen !== null) missing[ob.sink] = committed - seen;
      }
      const point: TimelinePoint = {
        t_s: Math.round((now - writer!.startedAt) / 100) / 10,
        committed_events: committed,
        rate: Math.round(((committed - lastCommitted) * 1000) / Math.max(1, now - lastSampleAt)),
        slot_lag_bytes: slot.rows[0]?.lag == null ? null : Number(slot.rows[0].lag),
        // Clamped: the end offsets are read before the groups' offsets, which may have moved past them meanwhile.
        consumer_lag: Object.fromEntries(o.sinks.map((s) => [s, Math.max(0, lag.lag[s] ?? 0)])),
        missing,
        phase,
      };
      lastCommitted = committed;
      lastSampleAt = now;
      timeline.push(point);
      o.onSample?.(point, { p99_ms: Object.fromEntries(observers.map((ob) => [ob.sink, ob.latency.at(99)])) });
      return point;
    };
    const scrapeMetrics = async (): Promise<string[] | null> =>
      o.metricsUrls?.length ? Promise.all(o.metricsUrls.map(async (u) => (await fetch(u)).text())).catch(() => null) : null;
    let scrapeBefore: string[] | null = null;
    // The spawned processes' own histograms, for where the time goes per stage (./stages.ts).
    const stageUrls = pipeline ? pipeline.processes.map((p) => `http://127.0.0.1:${p.metricsPort}/metrics`) : (o.metricsUrls ?? []);
    const scrapeStages = async (): Promise<string[] | null> => (stageUrls.length ? Promise.all(stageUrls.map(async (u) => (await fetch(u)).text())).catch(() => null) : null);
    let stagesBefore: string[] | null = null;
    const load = writer.run(clients, o.signal);
    let loadDone = false;
    let loadError: unknown = null;
    load.then(
      () => (loadDone = true),
      (err: unknown) => ((loadDone = true), (loadError = err)),
    );
    let nextKill = o.killDelivererEveryS ? Date.now() + o.killDelivererEveryS * 1000 : Infinity;
    let killTurn = 0;
    let killing: Promise<void> | null = null;
    let killError: unknown = null;
    while (!loadDone) {
      await sleep(SAMPLE_MS, o.signal);
      if (phase === 'warmup' && Date.now() >= writer.measuredFrom) {
        phase = 'measured';
        cpu = new CpuWindow(processes);
        scrapeBefore = await scrapeMetrics();
        stagesBefore = await scrapeStages();
      }
      const crashed = pipeline?.crashed();
      if (crashed) throw new Error(`${crashed.name} exited with ${crashed.child.exitCode} during the run: ${pipeline!.tail(crashed)}`);
      if (pipeline && Date.now() >= nextKill && !loadDone && killing === null) {
        // In the background: sampling goes on while the deliverer restarts (a rejoin takes seconds).
        const targets = pipeline.deliverers();
        const target = targets[killTurn++ % targets.length]!;
        log(`fault: SIGKILL ${target.name} (pid ${target.child.pid}) and restart it`);
        kills++;
        killed.push({ name: target.name, pid: target.child.pid!, at_s: Math.round((Date.now() - writer.startedAt) / 100) / 10 });
        killing = pipeline.killAndRestart(target).then(
          () => {
            killing = null;
            nextKill = Date.now() + o.killDelivererEveryS! * 1000;
          },
          (err: unknown) => {
            killError = err;
          },
        );
      }
      if (killError) throw killError;
      await sample();
    }
    if (loadError) throw loadError;
    await killing; // a restart still under way finishes before the drain
    if (killError) throw killError;
    cpu ??= new CpuWindow(processes);
    const scrapeAfter = await scrapeMetrics();
    const stagesAfter = await scrapeStages();
    // A deliverer killed meanwhile started its histograms again: no window to take a difference over.
    const stages = stagesBefore && stagesAfter && kills === 0 ? stageReport(stagesBefore, stagesAfter, o.sinks, writer.commitLagFigures()) : null;
    const cpuFigures = cpu.percent();
    const steal = cpu.steal();
    const loadEnd = loadavg();
    const endLsn = (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;

    // --- drain -------------------------------------------------------------------------
    phase = 'drain';
    const drainStarted = Date.now();
    let waitingFor: string[] = [];
    for (;;) {
      if (o.signal.aborted) break;
      const point = await sample();
      const captured = await db.query<{ done: boolean }>('SELECT confirmed_flush_lsn >= $2::pg_lsn AS done FROM pg_replication_slots WHERE slot_name = $1', [names.slot, endLsn]);
      waitingFor = [];
      if (captured.rows[0]?.done !== true) waitingFor.push('capture');
      for (const s of o.sinks) if ((point.consumer_lag[s] ?? 0) > 0) waitingFor.push(s);
      for (const [s, m] of Object.entries(point.missing)) if (m > 0 && !waitingFor.includes(s)) waitingFor.push(s);
      if (waitingFor.length === 0 || Date.now() - drainStarted > o.drainTimeoutS * 1000) break;
      const crashed = pipeline?.crashed();
      if (crashed) throw new Error(`${crashed.name} exited with ${crashed.child.exitCode} during the drain: ${pipeline!.tail(crashed)}`);
      await sleep(SAMPLE_MS, o.signal);
    }
    const drainSeconds = (Date.now() - drainStarted) / 1000;
    log(waitingFor.length === 0 ? `drained in ${drainSeconds.toFixed(1)} s` : `not drained within ${o.drainTimeoutS} s: waiting for ${waitingFor.join(', ')}`);

    // --- counts ------------------------------------------------------------------------
    const dlq = await countDeadLetters(kafka, names.dlqTopic, o.sinks);
    const sinks: Record<string, SinkReport> = {};
    for (const ob of observers) {
      const counts = await ob.count();
      const latency = ob.latency.summary();
      sinks[ob.sink] = {
        latency,
        delivered_rate: ob.sink === 'redis' ? null : Math.round(latency.count / o.durationS),
        counts: { ...counts, dlq: dlq[ob.sink] ?? 0 },
        ...(ob.sink === 'redis' ? { note: 'latency is a sample (one row per transaction); delivered_rate is not measured from the read model' } : {}),
      };
    }
    // --- final state (verify) ------------------------------------------------------------
    // While the pipeline still runs: a difference is re-checked once the sink has caught up.
    const stateSinks = verifiableSinks().filter((s) => o.sinks.includes(s));
    if (o.verify && stateSinks.length > 0) {
      const notRun = o.signal.aborted ? 'interrupted' : waitingFor.length > 0 ? 'not drained: a final-state comparison would only show the events still on the way' : null;
      if (notRun === null) log(`verify: comparing ${schema}.${name} in PostgreSQL with ${stateSinks.join(', ')}`);
      const checks = notRun === null
        ? await checkFinalState(config, `${schema}.${name}`, stateSinks, Math.min(60, o.drainTimeoutS) * 1000, o.signal)
        : Object.fromEntries(stateSinks.map((s) => [s, { method: 'verify' as const, not_run: notRun }]));
      for (const s of stateSinks) if (sinks[s]) sinks[s].verify = checks[s] ?? null;
    } else {
      for (const s of stateSinks) if (sinks[s]) sinks[s].verify = null;
    }

    for (const sink of o.sinks.filter((s) => !sinks[s])) {
      // A sink without an observer here (HTTP to an external system): the pipeline's own histogram, when given.
      const fallback = scrapeBefore && scrapeAfter
        ? summaryFromHistogram(histogramDelta(parseLatencyHistograms(scrapeAfter).get(sink), parseLatencyHistograms(scrapeBefore).get(sink)), o.metricsUrls!.join(', '))
        : null;
      sinks[sink] = {
        latency: fallback ?? { method: 'not measured: no --http-receiver and no --metrics-url', count: 0, p50_ms: null, p90_ms: null, p95_ms: null, p99_ms: null, 'p99.9_ms': null, max_ms: null, mean_ms: null, distribution: [] },
        delivered_rate: fallback ? Math.round(fallback.count / o.durationS) : null,
        counts: null,
        note: 'the sink delivers to an external system this command cannot read: no loss/duplicate counts (point its HTTP sink at --http-receiver PORT to count them)',
      };
    }

    // --- SLOs --------------------------------------------------------------------------
    const slotMax = timeline.reduce<number | null>((m, p) => (p.slot_lag_bytes === null ? m : Math.max(m ?? 0, p.slot_lag_bytes)), null);
    const consumerMax: Record<string, number> = {};
    for (const p of timeline) for (const [s, v] of Object.entries(p.consumer_lag)) consumerMax[s] = Math.max(consumerMax[s] ?? 0, v);
    const figures: SloFigures = { lag: slotMax, sinks: {}, stateDifferences: {} };
    for (const [sink, r] of Object.entries(sinks)) if (r.verify !== undefined && r.verify !== null) figures.stateDifferences![sink] = persistentDifferences(r.verify);
    for (const [sink, r] of Object.entries(sinks)) {
      const c = r.counts;
      figures.sinks[sink] = {
        p50: r.latency.p50_ms,
        p90: r.latency.p90_ms,
        p99: r.latency.p99_ms,
        'p99.9': r.latency['p99.9_ms'],
        max: r.latency.max_ms,
        mean: r.latency.mean_ms,
        loss: c ? c.lost : null,
        ...(c === null || c.duplicates !== undefined ? { dup: c?.duplicates ?? null } : {}),
        ...(c === null || c.out_of_order !== undefined ? { order: c?.out_of_order ?? null } : {}),
        dlq: c ? c.dlq : null,
        ...(r.delivered_rate !== null ? { rate: r.delivered_rate } : {}),
      };
    }
    const results = evaluateSlos(o.slos, figures);
    const missed = results.filter((r) => !r.ok).map(describeMiss);
    if (waitingFor.length > 0) {
      missed.push(`not drained within --drain-timeout ${o.drainTimeoutS} s: still waiting for ${waitingFor.join(', ')} (their 'lost' counts the events still on the way at the deadline)`);
    }
    const ok = missed.length === 0;
    return {
      schema: REPORT_SCHEMA_ID,
      ok,
      exit_code: ok ? 0 : 3,
      started_at: startedAt.toISOString(),
      finished_at: new Date().toISOString(),
      settings: {
        rate: o.rate,
        duration_s: o.durationS,
        warmup_s: o.warmupS,
        connections: o.connections,
        tx_size: o.txSize,
        row_bytes: o.rowBytes,
        workload: o.workload,
        key_change_share: o.keyChangeShare,
        toast_share: o.toastShare,
        drain_timeout_s: o.drainTimeoutS,
        slo: o.sloSpec,
        kill_deliverer_every_s: o.killDelivererEveryS ?? null,
        verify: o.verify,
      },
      pipeline: { mode: o.spawn ? 'spawn' : 'running', layout: o.spawn ? o.layout : null, pipeline_id: config.pipeline.id, table: `${schema}.${name}`, sinks: o.sinks },
      load: writer.figures(),
      stages,
      sinks,
      lag: { slot_max_bytes: slotMax, consumer_max: consumerMax },
      drain: { drained: waitingFor.length === 0, seconds: Math.round(drainSeconds * 10) / 10, timeout_s: o.drainTimeoutS, waiting_for: waitingFor },
      faults: { deliverer_kills: kills, killed },
      slo: { results, missed },
      machine: {
        ...machineBase(),
        loadavg_start: loadStart,
        loadavg_end: loadEnd,
        processes: cpuFigures,
        steal_percent: steal,
        note: `shared: PostgreSQL, Kafka, Redis and the BigQuery emulator serve this run on the same ${os.cpus().length} cores, beside whatever else runs (load average above)`,
      },
      timeline,
    };
  } finally {
    for (const ob of observers) await ob.stop().catch(() => {});
    if (receiver && !httpObserver) await receiver.close().catch(() => {});
    await pipeline?.stop().catch(() => {});
    for (const c of clients) await c.end().catch(() => {});
    if (o.spawn) {
      await db.query('SELECT pg_drop_replication_slot($1)', [names.slot]).catch(() => {});
      await db.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(names.publication)}`).catch(() => {});
      await admin.deleteTopics({ topics: [names.changesTopic, names.checkpointsTopic, names.dlqTopic] }).catch(() => {});
      await admin.deleteGroups(o.sinks.map((s) => names.consumerGroup(s))).catch(() => {});
      if (redis) await deleteKeys(redis, `${config.sinks.redis.keyPrefix}*`).catch(() => {});
      if (bq) await bq.dataset(config.sinks.bigquery.dataset).delete({ force: true }).catch(() => {});
    }
    if (createdTable && (ownTable || o.spawn)) await db.query(`DROP TABLE IF EXISTS ${qualified}`).catch(() => {});
    await db.end().catch(() => {});
    await admin.disconnect().catch(() => {});
    await redis?.quit().catch(() => {});
  }
}

/** The environment that turns on the sinks under test, and every other registered sink off, in a spawned pipeline. */
export function sinksEnabledEnv(sinks: readonly string[], plugins: readonly AnySinkPlugin[] = SINK_PLUGINS): Record<string, string> {
  return Object.fromEntries(plugins.map((p) => [envNameFor(['sinks', p.name, 'enabled']), String(sinks.includes(p.name))]));
}

/** The operator's config with the names of an isolated pipeline (what --spawn runs): every registered sink, on only when under test. */
export function pipelineConfig(base: Config, tag: string, table: string, sinks: readonly string[], plugins: readonly AnySinkPlugin[] = SINK_PLUGINS): Config {
  const parts = Object.fromEntries(plugins.map((p) => [p.name, { ...sinkConfigOf(base, p), enabled: sinks.includes(p.name) }])) as unknown as Config['sinks'];
  // The sinks that keep data get names of their own, as the spawned pipeline's environment gives them.
  if (parts.redis) parts.redis = { ...parts.redis, keyPrefix: `${tag}:` };
  if (parts.bigquery) parts.bigquery = { ...parts.bigquery, dataset: tag };
  return {
    ...base,
    pipeline: { ...base.pipeline, id: tag, topicPrefix: tag },
    postgres: { ...base.postgres, tables: [table], slot: '', publication: '' },
    sinks: parts,
  };
}

async function deleteKeys(redis: NonNullable<ReturnType<typeof makeRedis>>, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

export function splitTable(table: string): [string, string] {
  const parts = table.split('.');
  return parts.length === 2 ? [parts[0]!, parts[1]!] : ['public', table];
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
