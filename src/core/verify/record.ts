import { kafkaClient, metadataText, type Admin } from '../clients/rdkafka.js';
import { checkpointAdmin } from '../clients/restart-safe-admin.js';
import { derivedNames } from '../config/names.js';
import type { Config } from '../config/types.js';
import { NativeTransactionalClient } from '../kafka/transactional-client.js';
import { ensureTopics } from '../kafka/topics.js';
import type { Logger } from '../logger.js';
import { withTimeout } from '../timeout.js';
import type { VerifyResult } from './verify.js';

/**
 * The last verify run of each table, where `status` reads it: like a backfill run's
 * progress, a record on the compacted checkpoints topic (key `verify:<table>`) for people
 * and tools, and the same JSON as offset metadata of the group
 * `streamctl-<id>-verify-<table>`, which an offset fetch reads back exactly.
 */
export interface VerifyRecord {
  v: 1;
  run: string;
  table: string;
  at: string;
  equal: boolean;
  sinks: Record<string, { equal: boolean; missing: number; extra: number; differing: number; transient: number; rows: number }>;
}

const groupPrefix = (config: Config): string => `streamctl-${config.pipeline.id}-verify-`;

export function recordsOf(result: VerifyResult): VerifyRecord[] {
  const byTable = new Map<string, VerifyRecord>();
  for (const r of result.results) {
    const rec = byTable.get(r.table) ?? { v: 1, run: result.run, table: r.table, at: result.finished_at, equal: true, sinks: {} };
    rec.equal &&= r.equal;
    rec.sinks[r.sink] = { equal: r.equal, missing: r.missing, extra: r.extra, differing: r.differing, transient: r.transient, rows: r.rows_postgres };
    byTable.set(r.table, rec);
  }
  return [...byTable.values()];
}

/**
 * Stores each table's outcome; one small Kafka transaction per table, on librdkafka's
 * native producer (kafka/transactional-client.ts): its KafkaJS-compatible layer would drop
 * the offset metadata.
 */
export async function recordVerifyRun(config: Config, logger: Logger, result: VerifyResult, deadlineMs = RECORD_DEADLINE_MS): Promise<void> {
  const progress = { step: 'connecting to Kafka' };
  const giveUp = new AbortController();
  const recording = recordWithin(config, logger, result, progress, giveUp.signal);
  // The record is for `status`; verify's own answer is already in hand, so a Kafka that
  // does not answer costs the run its record, never the run (nor a cron job's exit).
  await withTimeout(recording, deadlineMs, () => `recording the run (at: ${progress.step})`, () => giveUp.abort());
}

/** How long verify waits to store its run's outcome for `status`. */
const RECORD_DEADLINE_MS = 30_000;

async function recordWithin(config: Config, logger: Logger, result: VerifyResult, progress: { step: string }, signal: AbortSignal): Promise<void> {
  const admin = kafkaClient(config.kafka, logger, { retries: 5 }).admin();
  const producer = new NativeTransactionalClient(config.kafka, logger, { transactionalId: `streamctl-verify-${config.pipeline.id}-${result.run}`, transactionTimeoutMs: 60_000 });
  const close = async () => {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  };
  // Given up on: close both, so that no call left waiting on Kafka holds the process; after
  // the caller has heard (librdkafka's admin disconnect blocks the thread on a request in flight).
  signal.addEventListener('abort', () => setImmediate(() => void close()), { once: true });
  try {
    await admin.connect();
    progress.step = 'creating the checkpoints topic';
    await ensureTopics(admin, config, signal);
    progress.step = 'initialising the transactional producer';
    await producer.connect();
    const topic = derivedNames(config).checkpointsTopic;
    for (const rec of recordsOf(result)) {
      signal.throwIfAborted();
      const text = JSON.stringify(rec);
      progress.step = `recording ${rec.table}`;
      await producer.begin();
      try {
        await producer.produce(topic, `verify:${rec.table}`, text);
        await producer.flush();
        progress.step = `storing the offset metadata of ${rec.table}`;
        await producer.sendOffsets(`${groupPrefix(config)}${rec.table}`, topic, 1, text);
        progress.step = `committing ${rec.table}`;
        await producer.commit();
      } catch (err) {
        await producer.abort().catch(() => {});
        throw err;
      }
    }
    progress.step = 'disconnecting';
  } finally {
    if (!signal.aborted) await close();
  }
}

/** The last run of every table verified in this pipeline, newest first. */
export async function lastVerifyRuns(admin: Admin, config: Config): Promise<VerifyRecord[]> {
  const prefix = groupPrefix(config);
  const topic = derivedNames(config).checkpointsTopic;
  const { groups } = await admin.listGroups();
  const out: VerifyRecord[] = [];
  for (const g of groups) {
    if (!g.groupId.startsWith(prefix)) continue;
    const offsets = await admin.fetchOffsets({ groupId: g.groupId, topics: [topic] }).catch(() => []);
    // librdkafka's writer ends the metadata with a NUL (clients/rdkafka.ts metadataText); runs recorded by kafkajs have none.
    const meta = metadataText(offsets[0]?.partitions.find((p) => p.partition === 0)?.metadata);
    if (!meta) continue;
    try {
      const rec = JSON.parse(meta) as VerifyRecord;
      if (rec.v === 1 && typeof rec.table === 'string') out.push(rec);
    } catch {
      // not ours to interpret
    }
  }
  return out.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
}

/** For `status`: the last verify runs, never throwing. */
export async function verifyStatus(config: Config, logger: Logger): Promise<{ runs: VerifyRecord[]; errors: string[] }> {
  const admin = checkpointAdmin(config.kafka, logger, { retries: 3, quiet: true });
  try {
    await admin.connect();
    return { runs: await lastVerifyRuns(admin, config), errors: [] };
  } catch (err) {
    return { runs: [], errors: [`verify runs: ${(err as Error).message}`] };
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
