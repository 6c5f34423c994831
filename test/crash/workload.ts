import type pg from 'pg';
import { makePgClient } from '../../src/core/clients/postgres.js';
import type { Config } from '../../src/core/config/index.js';

/** `docs` (REPLICA IDENTITY FULL, a TOASTed column, primary-key changes) only when asked for. */
export type WorkloadTables = Record<'orders' | 'items' | 'notes', string> & { docs?: string };

export const workloadTables = (tag: string, options: { keyChanges?: boolean } = {}): WorkloadTables => ({
  orders: `${tag}_orders`,
  items: `${tag}_items`,
  notes: `${tag}_notes`,
  ...(options.keyChanges ? { docs: `${tag}_docs` } : {}),
});

export async function createWorkloadTables(db: pg.Client, tables: WorkloadTables): Promise<void> {
  await db.query(`
    CREATE TABLE ${tables.orders} (id bigserial PRIMARY KEY, customer int8 NOT NULL, total numeric(20,6), status text,
      meta jsonb, created timestamptz DEFAULT now(), flags bool[], ref uuid DEFAULT gen_random_uuid());
    CREATE TABLE ${tables.items} (order_id int8, line int, sku text, qty int, price numeric, payload bytea, PRIMARY KEY (order_id, line));
    CREATE TABLE ${tables.notes} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), body text, updated timestamptz DEFAULT now());`);
  if (tables.docs) {
    await db.query(`
      CREATE TABLE ${tables.docs} (id int8 PRIMARY KEY, title text, body text, rev int DEFAULT 0);
      ALTER TABLE ${tables.docs} ALTER COLUMN body SET STORAGE EXTERNAL;
      ALTER TABLE ${tables.docs} REPLICA IDENTITY FULL;`);
  }
}

const rand = (n: number) => Math.floor(Math.random() * n);

/**
 * Small transactions of inserts, updates and deletes over three tables with mixed types
 * (int8, numeric, jsonb, arrays, uuid, bytea, a composite key), and one transaction of
 * `bigTransactionRows` rows. With `tables.docs`, also primary-key changes: of notes
 * (REPLICA IDENTITY DEFAULT, the body left unchanged) and of docs (FULL, a TOASTed body left
 * unchanged), and plain updates of docs. Returns how many events capture writes: one per
 * changed row, two per primary-key change (the old key's delete and the new key's update).
 */
export async function runWorkload(config: Config, tables: WorkloadTables, options: { smallEvents: number; bigTransactionRows: number }): Promise<number> {
  const db = makePgClient(config.postgres);
  await db.connect();
  let rows = 0;
  const orderIds: string[] = [];
  const noteIds: string[] = [];
  const items: Array<[string, number]> = [];
  const docIds: number[] = [];
  let nextDocId = 1;
  const exec = async (sql: string, params: unknown[] = [], eventsPerRow = 1): Promise<pg.QueryResult> => {
    const r = await db.query(sql, params);
    rows += (r.rowCount ?? 0) * eventsPerRow;
    return r;
  };
  const docs = tables.docs;
  /** One change of the key-change workload, or false when there is none to do. */
  const keyChange = async (pick: number): Promise<boolean> => {
    if (!docs) return false;
    if (pick === 0 || docIds.length < 5) {
      const id = nextDocId++;
      await exec(`INSERT INTO ${docs} (id, title, body) VALUES ($1, $2, $3)`, [id, `t${id}`, `${id}:${'b'.repeat(6000 + rand(4000))}`]);
      docIds.push(id);
    } else if (pick === 1) {
      const at = rand(docIds.length);
      const id = nextDocId++;
      await exec(`UPDATE ${docs} SET id = $2 WHERE id = $1`, [docIds[at], id], 2);
      docIds[at] = id;
    } else if (pick === 2) {
      await exec(`UPDATE ${docs} SET title = title || '.', rev = rev + 1 WHERE id = $1`, [docIds[rand(docIds.length)]]);
    } else if (noteIds.length > 0) {
      const at = rand(noteIds.length);
      const r = await exec(`UPDATE ${tables.notes} SET id = gen_random_uuid() WHERE id = $1 RETURNING id`, [noteIds[at]], 2);
      noteIds[at] = r.rows[0].id as string;
    } else return false;
    return true;
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
        if (docs && rand(5) === 0 && (await keyChange(rand(4)))) continue;
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

