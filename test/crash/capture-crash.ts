import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { makeKafka } from '../../src/core/clients/kafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { beginTransaction, eventsOf, type OpenTransaction } from '../../src/core/capture/assembler.js';
import { readCheckpoint } from '../../src/core/capture/kafka-writer.js';
import { recordKey } from '../../src/core/event/identity.js';
import { loadConfig, type Config } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { RawTextPgoutputPlugin } from '../../src/core/source/pgoutput-plugin.js';
import { SESSION_OPTIONS, TypeRegistry } from '../../src/core/source/pg-types.js';
import { exited, startCapturer, streaming } from '../helpers/capturer.js';
import { readTopic } from '../helpers/kafka-read.js';

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
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (n: number) => Math.floor(Math.random() * n);

export async function runCaptureCrash(options: CaptureCrashOptions): Promise<CaptureCrashResult> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const tag = `crash_${randomBytes(3).toString('hex')}`;
  const tables = { orders: `${tag}_orders`, items: `${tag}_items`, notes: `${tag}_notes` };
  const env: NodeJS.ProcessEnv = {
    STREAMCTL_PIPELINE_ID: tag,
    STREAMCTL_PIPELINE_TOPIC_PREFIX: tag,
    STREAMCTL_POSTGRES_TABLES: Object.values(tables).map((t) => `public.${t}`).join(','),
    STREAMCTL_METRICS_PORT: '0',
    STREAMCTL_CAPTURE_MAX_BATCH_EVENTS: String(options.maxBatchEvents),
    STREAMCTL_LOG_LEVEL: 'warn',
  };
  const config: Config = loadConfig({ env });
  const slot = `streamctl_${tag}`;
  const witness = `${tag}_witness`;
  const db = makePgClient(config.postgres, { options: SESSION_OPTIONS });
  await db.connect();
  const kafka = makeKafka(config.kafka, silentLogger, { retries: 10 });
  const admin = kafka.admin();
  await admin.connect();
  let child: ChildProcess | null = null;
  try {
    await db.query(`
      CREATE TABLE ${tables.orders} (id bigserial PRIMARY KEY, customer int8 NOT NULL, total numeric(20,6), status text,
        meta jsonb, created timestamptz DEFAULT now(), flags bool[], ref uuid DEFAULT gen_random_uuid());
      CREATE TABLE ${tables.items} (order_id int8, line int, sku text, qty int, price numeric, payload bytea, PRIMARY KEY (order_id, line));
      CREATE TABLE ${tables.notes} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), body text, updated timestamptz DEFAULT now());
      CREATE PUBLICATION ${slot} FOR TABLE ${Object.values(tables).join(', ')};`);
    // Both slots exist before the first change, so they see exactly the same transactions.
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [witness]);

    const workload = runWorkload(config, tables, options);
    let kills = 0;
    let workloadDone = false;
    void workload.finally(() => (workloadDone = true));
    while (kills < options.kills || !workloadDone) {
      child = startCapturer(env);
      const [lo, hi] = options.killWindowMs;
      await Promise.race([sleep(lo + rand(hi - lo)), exited(child)]);
      if (child.exitCode !== null) throw new Error(`the capturer exited by itself with ${child.exitCode}`);
      child.kill('SIGKILL');
      await exited(child);
      kills++;
      if (kills % 5 === 0) log(`kills: ${kills}`);
    }
    const workloadRows = await workload;
    log(`workload done: ${workloadRows} row changes; catching up after ${kills} kills`);

    const expected = await readWitness(db, witness, config);
    child = startCapturer({ ...env, STREAMCTL_LOG_LEVEL: 'info' }, true);
    await streaming(child);
    const deadline = Date.now() + 600_000;
    for (;;) {
      const checkpoint = await readCheckpoint(admin, config).catch(() => null);
      if (checkpoint && checkpoint.events_total >= expected.ids.length) break;
      if (child.exitCode !== null) throw new Error(`the capturer exited with ${child.exitCode} while catching up`);
      if (Date.now() > deadline) throw new Error(`capture did not catch up: checkpoint ${JSON.stringify(checkpoint)}`);
      await sleep(250);
    }
    child.kill('SIGTERM');
    const code = await exited(child);
    if (code !== 0) throw new Error(`graceful stop exited ${code}`);
    child = null;

    const expectedIds = new Set(expected.ids);
    const records = await readTopic(kafka, `${tag}.changes`, {
      enough: (rs) => rs.length >= expected.ids.length,
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
    };
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    for (const s of [slot, witness]) await db.query('SELECT pg_drop_replication_slot($1)', [s]).catch(() => {});
    await db.query(`DROP PUBLICATION IF EXISTS ${slot}`).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${Object.values(tables).join(', ')}`).catch(() => {});
    await db.end();
    await admin.deleteTopics({ topics: [`${tag}.changes`, `${tag}.checkpoints`, `${tag}.dlq`] }).catch(() => {});
    await admin.disconnect();
  }
}

/**
 * Small transactions of inserts, updates and deletes over three tables with mixed types
 * (int8, numeric, jsonb, arrays, uuid, bytea, a composite key), and one transaction of
 * `bigTransactionRows` rows. Returns how many rows its statements changed.
 */
async function runWorkload(config: Config, tables: Record<'orders' | 'items' | 'notes', string>, options: CaptureCrashOptions): Promise<number> {
  const db = makePgClient(config.postgres);
  await db.connect();
  let rows = 0;
  const orderIds: string[] = [];
  const noteIds: string[] = [];
  const items: Array<[string, number]> = [];
  const exec = async (sql: string, params: unknown[] = []): Promise<pg.QueryResult> => {
    const r = await db.query(sql, params);
    rows += r.rowCount ?? 0;
    return r;
  };
  try {
    const bigAt = Math.floor(options.smallEvents / 2);
    let bigDone = false;
    while (rows < options.smallEvents + options.bigTransactionRows) {
      if (!bigDone && rows >= bigAt) {
        await db.query('BEGIN');
        await exec(
          `INSERT INTO ${tables.items} SELECT -1, g, 'bulk-' || g, g % 7, (g * 1.25)::numeric, decode(md5(g::text), 'hex') FROM generate_series(1, $1) g`,
          [options.bigTransactionRows],
        );
        await db.query('COMMIT');
        bigDone = true;
        continue;
      }
      await db.query('BEGIN');
      const statements = 1 + rand(8);
      for (let s = 0; s < statements; s++) {
        const pickOp = rand(10);
        if (pickOp < 4 || orderIds.length < 10) {
          const r = await exec(
            `INSERT INTO ${tables.orders} (customer, total, status, meta, flags) VALUES ($1, $2, 'new', $3, $4) RETURNING id`,
            [String(2n ** 53n + BigInt(rand(1000))), `${rand(100000)}.${rand(1000000)}`, JSON.stringify({ n: rand(100), big: '12345678901234567890' }), [true, false]],
          );
          const id = r.rows[0].id as string;
          orderIds.push(id);
          for (let line = 1; line <= 1 + rand(3); line++) {
            await exec(`INSERT INTO ${tables.items} VALUES ($1, $2, $3, $4, $5, $6)`, [id, line, `sku-${rand(999)}`, 1 + rand(5), '9.99', Buffer.from([rand(256), 0, 255])]);
            items.push([id, line]);
          }
        } else if (pickOp < 7) {
          await exec(`UPDATE ${tables.orders} SET status = $2, total = total + 1 WHERE id = $1`, [orderIds[rand(orderIds.length)], `s${rand(5)}`]);
        } else if (pickOp < 8 && items.length > 0) {
          const [id, line] = items.splice(rand(items.length), 1)[0]!;
          await exec(`DELETE FROM ${tables.items} WHERE order_id = $1 AND line = $2`, [id, line]);
        } else if (pickOp < 9 || noteIds.length === 0) {
          const r = await exec(`INSERT INTO ${tables.notes} (body) VALUES ($1) RETURNING id`, [`note ${rand(1e9)} ünïcødé ✓`]);
          noteIds.push(r.rows[0].id as string);
        } else {
          await exec(`UPDATE ${tables.notes} SET body = body || '.', updated = now() WHERE id = $1`, [noteIds[rand(noteIds.length)]]);
        }
      }
      await db.query('COMMIT');
    }
    return rows;
  } finally {
    await db.end();
  }
}

/** Every change the witness slot saw: ids in commit order, and per record key. */
async function readWitness(db: pg.Client, slot: string, config: Config): Promise<{ ids: string[]; perKey: Map<string, string[]> }> {
  const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: [`streamctl_${config.pipeline.id}`] });
  const registry = new TypeRegistry((sql, params) => db.query(sql, params));
  const ids: string[] = [];
  const perKey = new Map<string, string[]>();
  let tx: OpenTransaction | null = null;
  const source = { pipeline: config.pipeline.id, db: config.postgres.database, slot };
  for (;;) {
    // In chunks, consuming the slot as it goes, so the test's memory stays bounded too.
    const { rows } = await db.query<{ data: Buffer }>(
      `SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, 20000, 'proto_version', '1', 'publication_names', $2)`,
      [slot, `streamctl_${config.pipeline.id}`],
    );
    if (rows.length === 0) break;
    for (const { data } of rows) {
      const message = plugin.parse(data);
      if (message.tag === 'begin') tx = beginTransaction(message);
      else if (message.tag === 'relation') await registry.resolveForRelation(message);
      else if (message.tag === 'commit') tx = null;
      else if (tx) {
        for (const event of eventsOf(message, tx, registry, source)) {
          ids.push(event.id);
          const key = recordKey(event.schema, event.table, event.key);
          const list = perKey.get(key) ?? [];
          list.push(event.id);
          perKey.set(key, list);
        }
      }
    }
  }
  return { ids, perKey };
}

