import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { readCheckpoint, shownEventsTotal } from '../../src/core/capture/kafka-writer.js';
import { RestartSafeAdmin } from '../../src/core/clients/restart-safe-admin.js';
import { recordKey } from '../../src/core/event/identity.js';
import { createWorkloadTables, runWorkload } from './workload.js';
import { loadConfig, type Config } from '../../src/core/config/index.js';
import { kafkaClient } from '../../src/core/clients/rdkafka.js';
import { silentLogger } from '../../src/core/logger.js';
import { SESSION_OPTIONS } from '../../src/core/source/pg-types.js';
import { forEachSlotEvent } from '../helpers/slot-events.js';
import { collectStderr, exited, startCapturer, streaming } from '../helpers/capturer.js';
import { PrivateKafka } from '../helpers/private-servers.js';
import { readTopic } from '../helpers/kafka-read.js';
import { unique } from '../helpers/stack.js';

/**
 * The exactly-once proof for capture: a mixed workload runs against PostgreSQL while the
 * capturer is SIGKILLed at random instants and restarted. Afterwards every committed
 * change must be in Kafka once, in commit order per key.
 *
 * What "every committed change" is comes from two independent witnesses: a second logical
 * slot on the same publication (read with SQL, not with the capturer's code path), and the
 * workload's own count of the rows its statements changed.
 */
export interface CaptureCrashOptions {
  kills: number;
  /** Changes from small transactions, beside the one big transaction. */
  smallEvents: number;
  bigTransactionRows: number;
  /** Kill after a random time in [minMs, maxMs] of the capturer running. */
  killWindowMs: [number, number];
  maxBatchEvents: number;
  /**
   * Instead of killing the capturer: one capturer runs throughout on a private Kafka broker,
   * which is stopped this many times (SIGKILL and SIGTERM in turn, at a random instant of the
   * kill window, down 0.5-3.5 s) and started again. Exercises capture's commits failing and
   * being answered across a broker restart (./verified-confirms.ts in src/core/capture).
   */
  brokerRestarts?: number;
  log?: (line: string) => void;
}

export interface CaptureCrashResult {
  kills: number;
  events: number;
  lost: number;
  duplicates: number;
  out_of_order: number;
  workload_rows: number;
  kafka_records: number;
  seconds: number;
  /** With brokerRestarts: hanging transactions Kafka left that were aborted as the README tells an operator to (README, "A Kafka transaction that never ends"). */
  hanging_aborted?: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (n: number) => Math.floor(Math.random() * n);

export async function runCaptureCrash(options: CaptureCrashOptions): Promise<CaptureCrashResult> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  // unique(): the name carries its time, so scripts/test can tell a stale slot from a live run's.
  const tag = unique('crash');
  const tables = { orders: `${tag}_orders`, items: `${tag}_items`, notes: `${tag}_notes` };
  const broker = options.brokerRestarts ? await PrivateKafka.start() : null;
  const env: NodeJS.ProcessEnv = {
    ...(broker?.env ?? {}),
    STREAMCTL_PIPELINE_ID: tag,
    STREAMCTL_PIPELINE_TOPIC_PREFIX: tag,
    STREAMCTL_POSTGRES_TABLES: Object.values(tables).map((t) => `public.${t}`).join(','),
    STREAMCTL_METRICS_PORT: '0',
    STREAMCTL_CAPTURE_MAX_BATCH_EVENTS: String(options.maxBatchEvents),
    // CRASH_CAPTURER_LOG_LEVEL (info, debug): more of the capturer's story, for a failure's diagnosis.
    STREAMCTL_LOG_LEVEL: process.env['CRASH_CAPTURER_LOG_LEVEL'] ?? 'warn',
  };
  const config: Config = loadConfig({ env });
  const slot = `streamctl_${tag}`;
  const witness = `${tag}_witness`;
  const db = makePgClient(config.postgres, { options: SESSION_OPTIONS });
  await db.connect();
  const kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
  const admin = kafka.admin();
  await admin.connect();
  let child: ChildProcess | null = null;
  // Opened only with broker restarts, closed in `finally` whatever happened: an open client or a
  // loop still inserting would keep this process alive after a failure (the test file never
  // ends and the suite runs into CI's limit) and hide the failure behind its own error.
  const safeAdmin = new RestartSafeAdmin(config.kafka, silentLogger, 0);
  const steadyDb = makePgClient(config.postgres);
  let steadyStop = false;
  let steady: Promise<void> = Promise.resolve();
  let steadyOpen = false;
  try {
    await createWorkloadTables(db, tables);
    await db.query(`CREATE PUBLICATION ${slot} FOR TABLE ${Object.values(tables).join(', ')}`);
    // Both slots exist before the first change, so they see exactly the same transactions.
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [witness]);

    const workload = runWorkload(config, tables, options);
    let kills = 0;
    let workloadDone = false;
    void workload.finally(() => (workloadDone = true));
    let probes = 0;
    const hangingAborted: string[] = [];
    // With broker restarts: small inserts all the while, so each restart finds commits under
    // way (the workload above is over within seconds); each one is a change the witness sees.
    let steadyRows = 0;
    if (broker) {
      await safeAdmin.connect();
      await steadyDb.connect();
      steadyOpen = true;
      steady = (async () => {
        while (!steadyStop) {
          await steadyDb.query(`INSERT INTO ${tables.notes} (body) VALUES ($1)`, [`steady ${steadyRows}`]);
          steadyRows++;
          await sleep(5);
        }
      })();
      // A failed insert ends the loop; it is reported where the loop is awaited, never as an unhandled rejection.
      steady.catch(() => {});
      // Info by default: the capturer's story of each restart is what a failure's message shows
      // (kept in memory, printed only then).
      child = startCapturer({ ...env, STREAMCTL_LOG_LEVEL: process.env['CRASH_CAPTURER_LOG_LEVEL'] ?? 'info' }, true);
      const stderr = collectStderr(child);
      // CRASH_CAPTURER_LOG=FILE: the broker-restart capturer's whole log, written there at the end (or on a failure).
      const logFile = process.env['CRASH_CAPTURER_LOG'];
      if (logFile) child.once('exit', () => writeFileSync(logFile, stderr.text));
      const childExit = exited(child);
      for (let restart = 1; restart <= options.brokerRestarts!; restart++) {
        const [lo, hi] = options.killWindowMs;
        await Promise.race([sleep(lo + rand(hi - lo)), childExit]);
        if (child.exitCode !== null) throw new Error(`the capturer exited by itself with ${child.exitCode}: ${stderr.text.slice(-3000)}`);
        await broker.stop(restart % 2 === 1 ? 'SIGKILL' : 'SIGTERM');
        await sleep(500 + rand(3000));
        await broker.restart();
        kills++;
        // Capture is back once a change written now is in a committed checkpoint. If it is not
        // within 2 minutes, Kafka kept a transaction open that its coordinator forgot: aborted
        // the way the README tells an operator to, then capture must go on and lose nothing.
        // Read the consumer's way: the admin's offset fetch can abort the process around a broker restart (librdkafka#4605).
        const committed = () => shownEventsTotal(safeAdmin, config).catch(() => -1);
        const before = await committed();
        let last = before;
        await db.query(`INSERT INTO ${tables.notes} (body) VALUES ('probe after broker restart ${restart}')`);
        probes++;
        const moved = async (ms: number) => {
          for (const end = Date.now() + ms; Date.now() < end; await sleep(500)) {
            if (child!.exitCode !== null) throw new Error(`the capturer exited with ${child!.exitCode} after broker restart ${restart}: ${stderr.text.slice(-3000)}`);
            last = await committed();
            if (last > before) return true;
          }
          return false;
        };
        if (!(await moved(120_000))) {
          const aborted = await broker.abortHangingTransactions();
          if (aborted.length === 0 || !(await moved(120_000))) {
            // -1: the checkpoint could not be read at all (the test's reader, not capture, may be the one stuck).
            throw new Error(
              `capture did not resume after broker restart ${restart} (events in committed checkpoints: ${before} before, ${last} last read; hanging transactions aborted: ${aborted.length})\n` +
                `--- capturer\n${stderr.text.slice(-6000)}\n--- private broker\n${broker.logTail(3000)}`,
            );
          }
          hangingAborted.push(...aborted);
          log(`broker restart ${restart}: Kafka left a hanging transaction; aborted ${aborted.join(', ')}`);
        }
        log(`broker restarts: ${restart}`);
      }
      steadyStop = true;
      await steady;
      steadyOpen = false;
      await steadyDb.end();
      child.kill('SIGTERM');
      const code = await exited(child);
      if (code !== 0) throw new Error(`graceful stop after the broker restarts exited ${code}: ${stderr.text.slice(-3000)}`);
      child = null;
    }
    while (!broker && (kills < options.kills || !workloadDone)) {
      child = startCapturer(env);
      const [lo, hi] = options.killWindowMs;
      await Promise.race([sleep(lo + rand(hi - lo)), exited(child)]);
      if (child.exitCode !== null) throw new Error(`the capturer exited by itself with ${child.exitCode}`);
      child.kill('SIGKILL');
      await exited(child);
      kills++;
      if (kills % 5 === 0) log(`kills: ${kills}`);
    }
    // The probes after each broker restart are changes too, seen by the witness slot.
    const workloadRows = (await workload) + probes + steadyRows;
    log(`workload done: ${workloadRows} row changes; catching up after ${kills} kills`);

    const expected = await readWitness(db, witness, config);
    child = startCapturer({ ...env, STREAMCTL_LOG_LEVEL: 'info' }, true);
    await streaming(child);
    // Caught up: the checkpoint counts every change, or the slot is confirmed past the end
    // of the workload and the checkpoint stands still (changes were lost: count them below
    // rather than wait for the deadline).
    const { rows: walRows } = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    const workloadEnd = walRows[0]!.lsn;
    const deadline = Date.now() + 600_000;
    let still = { events: -1, since: Date.now() };
    let written = 0;
    for (;;) {
      const checkpoint = await readCheckpoint(admin, config).catch(() => null);
      written = checkpoint?.events_total ?? 0;
      if (written >= expected.ids.length) break;
      const events = checkpoint?.events_total ?? 0;
      if (events !== still.events) still = { events, since: Date.now() };
      const { rows: slotRows } = await db.query<{ past: boolean }>('SELECT confirmed_flush_lsn >= $2::pg_lsn AS past FROM pg_replication_slots WHERE slot_name = $1', [slot, workloadEnd]);
      if (slotRows[0]?.past && Date.now() - still.since > 10_000) {
        log(`the slot is past the workload's end but the checkpoint stopped at ${events} of ${expected.ids.length} changes`);
        break;
      }
      if (child.exitCode !== null) throw new Error(`the capturer exited with ${child.exitCode} while catching up`);
      if (Date.now() > deadline) throw new Error(`capture did not catch up: checkpoint ${JSON.stringify(checkpoint)}`);
      await sleep(250);
    }
    child.kill('SIGTERM');
    const code = await exited(child);
    if (code !== 0) throw new Error(`graceful stop exited ${code}`);
    child = null;

    const expectedIds = new Set(expected.ids);
    const records = await readTopic(kafkaClient(config.kafka, silentLogger), `${tag}.changes`, {
      // As many as the capturer says it wrote (fewer than expected when changes were lost).
      enough: (rs) => rs.length >= Math.min(written, expected.ids.length),
      quietMs: 3000,
    });
    const seen = new Map<string, number>();
    const perKey = new Map<string, string[]>();
    for (const r of records) {
      const id = (JSON.parse(r.value) as { id: string }).id;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      if (seen.get(id) === 1) {
        const list = perKey.get(r.key) ?? [];
        list.push(id);
        perKey.set(r.key, list);
      }
    }
    const lost = expected.ids.filter((id) => !seen.has(id)).length;
    let duplicates = 0;
    for (const [id, n] of seen) {
      if (n > 1) duplicates += n - 1;
      if (!expectedIds.has(id)) duplicates += 1; // a change that never happened counts against us too
    }
    let outOfOrder = 0;
    for (const [key, want] of expected.perKey) {
      const got = perKey.get(key) ?? [];
      const wantSeen = want.filter((id) => seen.has(id));
      for (let i = 0; i < wantSeen.length; i++) if (got[i] !== wantSeen[i]) outOfOrder++;
    }
    if (expected.ids.length !== workloadRows) {
      throw new Error(`the witnesses disagree: the witness slot saw ${expected.ids.length} changes, the workload made ${workloadRows}`);
    }
    return {
      kills,
      events: expected.ids.length,
      lost,
      duplicates,
      out_of_order: outOfOrder,
      workload_rows: workloadRows,
      kafka_records: records.length,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      ...(broker ? { hanging_aborted: hangingAborted } : {}),
    };
  } finally {
    steadyStop = true;
    await steady.catch(() => {});
    if (steadyOpen) await steadyDb.end().catch(() => {});
    if (broker) await safeAdmin.disconnect().catch(() => {});
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    for (const s of [slot, witness]) await db.query('SELECT pg_drop_replication_slot($1)', [s]).catch(() => {});
    await db.query(`DROP PUBLICATION IF EXISTS ${slot}`).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${Object.values(tables).join(', ')}`).catch(() => {});
    await db.end();
    if (!broker) await admin.deleteTopics({ topics: [`${tag}.changes`, `${tag}.checkpoints`, `${tag}.dlq`] }).catch(() => {});
    await admin.disconnect();
    await broker?.destroy();
  }
}

/** Every change the witness slot saw: ids in commit order, and per record key. */
async function readWitness(db: pg.Client, slot: string, config: Config): Promise<{ ids: string[]; perKey: Map<string, string[]> }> {
  const ids: string[] = [];
  const perKey = new Map<string, string[]>();
  const source = { pipeline: config.pipeline.id, db: config.postgres.database, slot };
  await forEachSlotEvent(db, { slot, publication: `streamctl_${config.pipeline.id}`, source }, (event) => {
    ids.push(event.id);
    const key = recordKey(event.schema, event.table, event.key);
    const list = perKey.get(key) ?? [];
    list.push(event.id);
    perKey.set(key, list);
  });
  return { ids, perKey };
}
