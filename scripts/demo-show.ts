/**
 * The demo's last look: the same table in PostgreSQL, the Redis read model, BigQuery's
 * latest-state view and the HTTP receiver, side by side. Exit 1 if a sink disagrees with
 * PostgreSQL once it had time to catch up.
 */
import { makeBigQuery } from '../src/core/clients/bigquery.js';
import { makePgClient } from '../src/core/clients/postgres.js';
import { makeRedis } from '../src/core/clients/redis.js';
import { loadConfig } from '../src/core/config/index.js';
import { silentLogger } from '../src/core/logger.js';
import { readRow } from '../src/core/sinks/redis/sink.js';

const config = loadConfig();
const table = 'demo.orders';
const db = makePgClient(config.postgres);
await db.connect();
const redis = makeRedis(config.sinks.redis, silentLogger);
await redis.connect();
const bq = makeBigQuery(config.sinks.bigquery);
const prefix = config.sinks.redis.keyPrefix;

const pgCount = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);
const deadline = Date.now() + 60_000;
let redisCount = -1;
let bqCount = -1;
while (Date.now() < deadline) {
  redisCount = await redis.scard(`${prefix}keys:${table}`);
  const [rows] = await bq
    .query({ query: `SELECT COUNT(*) AS n FROM \`${config.sinks.bigquery.dataset}.${config.sinks.bigquery.viewLatest}\` WHERE source_schema = 'demo' AND source_table = 'orders'` })
    .catch(() => [[{ n: -1 }]]);
  bqCount = Number((rows[0] as { n: number }).n);
  if (redisCount === pgCount && bqCount === pgCount) break;
  await new Promise((r) => setTimeout(r, 500));
}
const receiver = new URL(config.sinks.http.url);
const stats = (await (await fetch(`${receiver.origin}/_stats`)).json()) as { unique_keys: number; replays: number };
const latest = (await db.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id DESC LIMIT 1`)).rows[0];
const sample = latest ? await readRow(redis, prefix, table, { id: latest.id }) : null;
const recent = (await (await fetch(`${receiver.origin}/_recent?n=1`)).json()) as { recent: unknown[] };

const line = (name: string, value: string) => process.stdout.write(`  ${name.padEnd(24)} ${value}\n`);
process.stdout.write(`\nrows of ${table}, as each part of the pipeline sees them:\n`);
line('PostgreSQL', String(pgCount));
line('Redis (read model)', String(redisCount));
line('BigQuery (latest view)', String(bqCount));
line('HTTP receiver', `${stats.unique_keys} events accepted (all tables, all runs)`);
process.stdout.write(`\nthe newest row in Redis:  ${JSON.stringify(sample)}\n`);
process.stdout.write(`the last event the HTTP system accepted: ${JSON.stringify(recent.recent[0]).slice(0, 300)}...\n`);
await redis.quit();
await db.end();
process.exitCode = redisCount === pgCount && bqCount === pgCount ? 0 : 1;
