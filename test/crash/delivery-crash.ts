import { type Admin, type Kafka, endOffsets, kafkaClient } from '../../src/core/clients/rdkafka.js';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { makeRedis } from '../../src/core/clients/redis.js';
import { readCheckpoint } from '../../src/core/capture/kafka-writer.js';
import { derivedNames, loadConfig, type Config } from '../../src/core/config/index.js';
import { DLQ_HEADERS } from '../../src/core/delivery/dlq.js';
import { canonicalJson } from '../../src/core/event/identity.js';
import { silentLogger } from '../../src/core/logger.js';
import { decodeQueryRow, RAW_TEXT_TYPES, SESSION_OPTIONS, TypeRegistry } from '../../src/core/source/pg-types.js';
import { HttpReceiver } from '../../src/receiver/server.js';
import { exited } from '../helpers/capturer.js';
import { readTopic } from '../helpers/kafka-read.js';
import { dropPipeline, isolatedPipeline, RECEIVER_KEY, startStream, waitFor } from '../helpers/pipeline.js';
import { createWorkloadTables, runWorkload, workloadTables, type WorkloadTables } from './workload.js';

/**
 * The no-loss, no-duplicate proof for delivery: a workload flows through a capturer that
 * keeps running, while the deliverer (all three sinks) is SIGKILLed at random instants and
 * restarted, and the HTTP receiver answers a share of requests with 5xx, 429, hangs and
 * permanent 4xx. The workload includes primary-key changes and a REPLICA IDENTITY FULL
 * table with a TOASTed column. Afterwards, for each sink, every event is in its effective
 * view exactly once or in the DLQ for that sink, and Redis and BigQuery `latest` equal
 * PostgreSQL row by row. `http.resent`: requests for events the receiver had already
 * accepted (what a crash makes the HTTP sink send again).
 */
export interface DeliveryCrashOptions {
  kills: number;
  smallEvents: number;
  bigTransactionRows: number;
  killWindowMs: [number, number];
  faults: { '5xx': number; '429': number; hang: number; '4xx': number };
  log?: (line: string) => void;
}

export interface SinkTally {
  lost: number;
  duplicates: number;
  dlq: number;
}

export interface DeliveryCrashResult {
  kills: number;
  events: number;
  sinks: { redis: SinkTally; bigquery: SinkTally & { redelivered_rows: number }; http: SinkTally & { replays: number; resent: number } };
  redis_matches_postgres: boolean;
  redis_mismatches: string[];
  bigquery_latest_matches_postgres: boolean;
  bigquery_latest_mismatches: string[];
  seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (n: number) => Math.floor(Math.random() * n);

export async function runDeliveryCrash(options: DeliveryCrashOptions): Promise<DeliveryCrashResult> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const receiver = new HttpReceiver({ hmacKey: RECEIVER_KEY, hangMs: 30_000 });
  const address = await receiver.listen(0);
  const receiverUrl = `http://127.0.0.1:${address.port}`;
  const { tag, env } = isolatedPipeline([], `${receiverUrl}/events`, {
    STREAMCTL_LOG_LEVEL: 'warn',
    STREAMCTL_SINKS_HTTP_TIMEOUT_MS: '1000',
    STREAMCTL_SINKS_HTTP_RETRY_INITIAL_DELAY_MS: '50',
    STREAMCTL_SINKS_HTTP_RETRY_MAX_DELAY_MS: '500',
    STREAMCTL_SINKS_HTTP_BREAKER_HALF_OPEN_AFTER_MS: '2000',
    STREAMCTL_DELIVERY_SESSION_TIMEOUT_MS: '6000',
  });
  // Every child's stderr goes to a file of its own here, kept after the run: when a run
  // fails, the logs of the deliverer killed an hour earlier are what explains it.
  const logDir = path.join(process.env['CRASH_LOG_DIR'] ?? tmpdir(), `streamctl-crash-delivery-${tag}`);
  mkdirSync(logDir, { recursive: true });
  log(`child logs in ${logDir}`);
  const deliverEnv = { ...env, STREAMCTL_LOG_LEVEL: process.env['CRASH_DELIVER_LOG_LEVEL'] ?? 'info' };
  const tables: WorkloadTables = workloadTables(tag, { keyChanges: true });
  env['STREAMCTL_POSTGRES_TABLES'] = Object.values(tables).map((t) => `public.${t}`).join(',');
  const config: Config = loadConfig({ env });
  const names = derivedNames(config);
  const db = makePgClient(config.postgres, { options: SESSION_OPTIONS, types: RAW_TEXT_TYPES });
  await db.connect();
  const kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
  const admin = kafka.admin();
  const checkpointAdmin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
  await admin.connect();
  await checkpointAdmin.connect();
  const redis = makeRedis(config.sinks.redis, silentLogger);
  await redis.connect();
  const bq = makeBigQuery(config.sinks.bigquery);
  const children: ChildProcess[] = [];
  try {
    await createWorkloadTables(db, tables);
    await fetch(`${receiverUrl}/_control`, { method: 'POST', body: JSON.stringify({ rates: options.faults, retryAfterSeconds: 1 }) });
    const capture = startStream({ ...env, STREAMCTL_LOG_LEVEL: 'info' }, 'capture', path.join(logDir, 'capture.log'));
    children.push(capture.child);
    await waitFor('capture to start', async () => capture.log.text.includes('capture starting') || (capture.child.exitCode !== null && Promise.reject(new Error(capture.log.text))));

    const workload = runWorkload(config, tables, options);
    let workloadDone = false;
    void workload.finally(() => (workloadDone = true));
    let kills = 0;
    while (kills < options.kills || !workloadDone) {
      const deliver = startStream(deliverEnv, 'deliver', path.join(logDir, `deliver-${String(kills + 1).padStart(2, '0')}.log`));
      children.push(deliver.child);
      const [lo, hi] = options.killWindowMs;
      await Promise.race([sleep(lo + rand(hi - lo)), exited(deliver.child)]);
      if (deliver.child.exitCode !== null) throw new Error(`the deliverer exited by itself with ${deliver.child.exitCode}: ${deliver.log.text.slice(-2000)}`);
      deliver.child.kill('SIGKILL');
      await exited(deliver.child);
      kills++;
      if (kills % 5 === 0) log(`kills: ${kills}`);
    }
    const events = await workload;
    log(`workload done: ${events} row changes; ${kills} kills; draining`);
    await waitFor('capture to catch up', async () => (await readCheckpoint(checkpointAdmin, config))?.events_total === events, 300_000);
    // The last deliverer runs without faults injected only for hangs: failures still go on.
    const last = startStream({ ...deliverEnv, STREAMCTL_LOG_LEVEL: process.env['CRASH_FINAL_LOG_LEVEL'] ?? 'debug' }, 'deliver', path.join(logDir, 'deliver-final.log'));
    children.push(last.child);
    let lastReport = 0;
    // A transaction marker at the end of a partition can stay counted in a group's lag
    // (kafkajs does not always commit past it), so "caught up" is: at most one record per
    // partition left, unchanged for 15 s. The checks below then count every event by id,
    // so an event still missing is reported as lost, not hidden by this rule.
    let steadySince = 0;
    let steadyLag = '';
    await waitFor(
      'every sink to catch up',
      async () => {
        const ends = await endOffsets(admin, names.changesTopic);
        const lag: Record<string, number> = {};
        const perPartition: Record<string, number[]> = {};
        for (const sink of ['redis', 'bigquery', 'http'] as const) {
          const committed = await admin.fetchOffsets({ groupId: names.consumerGroup(sink), topics: [names.changesTopic] });
          lag[sink] = 0;
          perPartition[sink] = [];
          for (const end of ends) {
            const done = BigInt(committed[0]?.partitions.find((p) => p.partition === end.partition)?.offset ?? '-1');
            const n = Number(BigInt(end.high) - (done < 0n ? BigInt(end.low) : done));
            lag[sink] += n;
            perPartition[sink][end.partition] = n;
          }
        }
        if (Date.now() - lastReport > 10_000) {
          lastReport = Date.now();
          log(`draining, lag per sink: ${JSON.stringify(lag)} per partition: ${JSON.stringify(perPartition)}`);
          // A lag that stopped moving: say who is in each group and what it holds.
          if (steadySince && Date.now() - steadySince > 20_000 && Object.values(lag).some((n) => n > ends.length)) {
            const groups = await admin.describeGroups(['redis', 'bigquery', 'http'].map((s) => names.consumerGroup(s)));
            for (const g of groups.groups) {
              const members = g.members.map((m) => `${m.clientId}/${m.memberId.slice(-8)}@${m.clientHost}`);
              log(`  group ${g.groupId}: state ${g.state}, members ${JSON.stringify(members)}`);
            }
          }
        }
        if (last.child.exitCode !== null) throw new Error(`the last deliverer exited: ${last.log.text.slice(-3000)}`);
        const key = JSON.stringify(lag);
        if (key !== steadyLag) {
          steadyLag = key;
          steadySince = Date.now();
        }
        return Object.values(lag).every((n) => n <= ends.length) && Date.now() - steadySince >= 15_000;
      },
      600_000,
    );
    last.child.kill('SIGTERM');
    if ((await exited(last.child)) !== 0) throw new Error(`the last deliverer did not stop cleanly: ${last.log.text.slice(-2000)}`);
    capture.child.kill('SIGTERM');
    await exited(capture.child);

    // What should be everywhere: every change in the changes topic.
    const changes = await readTopic(kafka, names.changesTopic, { enough: (rs) => rs.length >= events, quietMs: 2000 });
    const expected = new Set(changes.map((r) => (JSON.parse(r.value) as { id: string }).id));
    const dlq = { redis: new Set<string>(), bigquery: new Set<string>(), http: new Set<string>() };
    const dlqEnd = await endOffsets(admin, names.dlqTopic);
    const dlqCount = dlqEnd.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
    if (dlqCount > 0) {
      for (const r of await readTopic(kafka, names.dlqTopic, { enough: (rs) => rs.length >= dlqCount, quietMs: 500, timeoutMs: 60_000 })) {
        dlq[(r.headers[DLQ_HEADERS.sink] ?? '') as keyof typeof dlq]?.add(r.headers[DLQ_HEADERS.eventId] ?? '');
      }
    }

    // HTTP: each event accepted once (the receiver's idempotency keys), or dead-lettered.
    const keys = ((await (await fetch(`${receiverUrl}/_keys`)).json()) as { keys: Record<string, number> }).keys;
    const stats = (await (await fetch(`${receiverUrl}/_stats`)).json()) as { duplicates: number; replays: number };
    const http = {
      lost: [...expected].filter((id) => !keys[id] && !dlq.http.has(id)).length,
      duplicates: stats.duplicates,
      dlq: dlq.http.size,
      replays: stats.replays,
      // One event per request (batchSize 1): a replay is one accepted event sent again.
      resent: stats.replays,
    };

    // BigQuery: the view shows each event once; the raw table may hold re-deliveries.
    const [raw] = await bq.query({ query: `SELECT event_id, COUNT(*) AS n FROM \`${tag}.changes\` GROUP BY event_id` });
    const inBq = new Map((raw as Array<{ event_id: string; n: number }>).map((r) => [r.event_id, Number(r.n)]));
    const [onceDup] = await bq.query({ query: `SELECT COUNT(*) - COUNT(DISTINCT event_id) AS d FROM \`${tag}.changes_once\`` });
    const bigquery = {
      lost: [...expected].filter((id) => !inBq.has(id) && !dlq.bigquery.has(id)).length,
      duplicates: Number((onceDup[0] as { d: number }).d),
      dlq: dlq.bigquery.size,
      redelivered_rows: [...inBq.values()].reduce((n, c) => n + c - 1, 0),
    };

    // Redis and BigQuery latest: the read models equal PostgreSQL row by row, with nothing extra.
    const registry = new TypeRegistry((sql, params) => db.query(sql, params));
    const mismatches: string[] = [];
    const latestMismatches: string[] = [];
    const withoutStamp = (row: Record<string, unknown>) => Object.fromEntries(Object.entries(row).filter(([k]) => k !== '_streamctl'));
    for (const table of Object.values(tables)) {
      const result = await db.query(`SELECT * FROM ${table}`);
      await registry.resolveForFields(result.fields);
      const pk = table === tables.items ? ['order_id', 'line'] : ['id'];
      const [latestRows] = await bq.query({ query: `SELECT row_key, after, ARRAY_LENGTH(unresolved) AS unresolved FROM \`${tag}.latest\` WHERE source_table = '${table}'` });
      const latest = new Map((latestRows as Array<{ row_key: string; after: string; unresolved: number | null }>).map((r) => [r.row_key, r]));
      for (const row of result.rows as Array<Record<string, unknown>>) {
        const want = decodeQueryRow(result.fields, row, registry);
        const key = Object.fromEntries(pk.map((c) => [c, want[c]]));
        const fields = await redis.hgetall(`${tag}:row:public.${table}:${canonicalJson(key)}`);
        const got = withoutStamp(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, JSON.parse(v) as unknown])));
        if (canonicalJson(got) !== canonicalJson(want)) mismatches.push(`${table} ${canonicalJson(key)}`);
        const inLatest = latest.get(canonicalJson(key));
        if (!inLatest || (inLatest.unresolved ?? 0) > 0 || canonicalJson(withoutStamp(JSON.parse(inLatest.after) as Record<string, unknown>)) !== canonicalJson(want)) {
          latestMismatches.push(`${table} ${canonicalJson(key)}${inLatest ? '' : ' missing'}`);
        }
      }
      const inRedis = await redis.scard(`${tag}:keys:public.${table}`);
      if (inRedis !== result.rowCount) mismatches.push(`${table}: ${inRedis} rows in Redis, ${result.rowCount} in PostgreSQL`);
      if (latest.size !== result.rowCount) latestMismatches.push(`${table}: ${latest.size} rows in latest, ${result.rowCount} in PostgreSQL`);
    }
    const redisTally = { lost: mismatches.length, duplicates: 0, dlq: dlq.redis.size };
    return {
      kills,
      events,
      sinks: { redis: redisTally, bigquery, http },
      redis_matches_postgres: mismatches.length === 0,
      redis_mismatches: mismatches.slice(0, 10),
      bigquery_latest_matches_postgres: latestMismatches.length === 0,
      bigquery_latest_mismatches: latestMismatches.slice(0, 10),
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const c of children) await exited(c);
    const keys = await redis.keys(`${tag}:*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
    await redis.quit();
    await bq.dataset(tag).delete({ force: true }).catch(() => {});
    await dropPipeline(db, admin, tag);
    await admin.deleteGroups(['redis', 'bigquery', 'http'].map((s) => names.consumerGroup(s))).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${Object.values(tables).join(', ')}`);
    await db.end();
    await admin.disconnect();
    await checkpointAdmin.disconnect().catch(() => {});
    await receiver.close();
  }
}

