import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type pg from 'pg';
import type { Admin } from '../../src/core/clients/rdkafka.js';
import { BIN } from './run-cli.js';
import { unique } from './stack.js';

export const RECEIVER_KEY = 'test-receiver-key-0123456789abcdef';

/** Names and env for one isolated pipeline: its own slot, topics, Redis prefix, BigQuery dataset. */
export function isolatedPipeline(tables: string[], httpUrl: string, extra: Record<string, string> = {}): { tag: string; env: Record<string, string> } {
  const tag = unique('p');
  return {
    tag,
    env: {
      STREAMCTL_PIPELINE_ID: tag,
      STREAMCTL_PIPELINE_TOPIC_PREFIX: tag,
      STREAMCTL_POSTGRES_TABLES: tables.join(','),
      STREAMCTL_METRICS_PORT: '0',
      STREAMCTL_LOG_LEVEL: 'info',
      STREAMCTL_SINKS_REDIS_KEY_PREFIX: `${tag}:`,
      STREAMCTL_SINKS_BIGQUERY_DATASET: tag,
      STREAMCTL_SINKS_HTTP_URL: httpUrl,
      STREAMCTL_SINKS_HTTP_HMAC_KEY: RECEIVER_KEY,
      STREAMCTL_SINKS_HTTP_HMAC_KEY_FILE: '',
      ...extra,
    },
  };
}

/**
 * `streamctl stream --role <role>` as its own process. Its stderr is kept in memory and,
 * when `logFile` is given, also appended to that file: a long crash run must leave the
 * logs of a process it killed long ago for whoever investigates a failure.
 */
export function startStream(env: Record<string, string>, role = 'all', logFile?: string): { child: ChildProcess; log: { text: string } } {
  const child = spawn(process.execPath, [BIN, 'stream', '--role', role], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const log = { text: '' };
  const file = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
  child.stderr?.on('data', (d: Buffer) => {
    log.text += d.toString();
    file?.write(d);
  });
  child.once('close', () => file?.end());
  return { child, log };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Drops what a pipeline left in PostgreSQL and Kafka. */
export async function dropPipeline(db: pg.Client, admin: Pick<Admin, 'deleteTopics'> | { deleteTopics(o: { topics: string[] }): Promise<unknown> }, tag: string): Promise<void> {
  await db.query('SELECT pg_drop_replication_slot($1)', [`streamctl_${tag}`]).catch(() => {});
  await db.query(`DROP PUBLICATION IF EXISTS streamctl_${tag}`).catch(() => {});
  await admin.deleteTopics({ topics: [`${tag}.changes`, `${tag}.checkpoints`, `${tag}.dlq`] }).catch(() => {});
}
