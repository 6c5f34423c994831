import type pg from 'pg';
import { makePgClient } from '../../src/core/clients/postgres.js';
import type { Config } from '../../src/core/config/index.js';

export type WorkloadTables = Record<'orders' | 'items' | 'notes', string>;

export const workloadTables = (tag: string): WorkloadTables => ({ orders: `${tag}_orders`, items: `${tag}_items`, notes: `${tag}_notes` });

export async function createWorkloadTables(db: pg.Client, tables: WorkloadTables): Promise<void> {
  await db.query(`
    CREATE TABLE ${tables.orders} (id bigserial PRIMARY KEY, customer int8 NOT NULL, total numeric(20,6), status text,
      meta jsonb, created timestamptz DEFAULT now(), flags bool[], ref uuid DEFAULT gen_random_uuid());
    CREATE TABLE ${tables.items} (order_id int8, line int, sku text, qty int, price numeric, payload bytea, PRIMARY KEY (order_id, line));
    CREATE TABLE ${tables.notes} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), body text, updated timestamptz DEFAULT now());`);
}

const rand = (n: number) => Math.floor(Math.random() * n);

/**
 * Small transactions of inserts, updates and deletes over three tables with mixed types
 * (int8, numeric, jsonb, arrays, uuid, bytea, a composite key), and one transaction of
 * `bigTransactionRows` rows. Returns how many rows its statements changed.
 */
export async function runWorkload(config: Config, tables: WorkloadTables, options: { smallEvents: number; bigTransactionRows: number }): Promise<number> {
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

