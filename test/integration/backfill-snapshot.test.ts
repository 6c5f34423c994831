import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { ChunkSnapshots } from '../../src/core/backfill/snapshot.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { parseLsn } from '../../src/core/event/lsn.js';
import { SESSION_OPTIONS } from '../../src/core/source/pg-types.js';
import { forEachSlotEvent } from '../helpers/slot-events.js';
import { stackConfig, unique } from '../helpers/stack.js';

/**
 * The ground backfill's consistency stands on, checked on a real PostgreSQL under
 * concurrent commits: a chunk snapshot sees a transaction if and only if its commit LSN
 * is before the snapshot's consistent point. A witness slot records each commit's LSN.
 */
describe('backfill chunk snapshots', { timeout: 120_000 }, () => {
  const config = stackConfig();
  const table = unique('bfsnap');
  const slot = unique('bfsnap_witness');
  let db: pg.Client;

  before(async () => {
    db = makePgClient(config.postgres, { options: SESSION_OPTIONS });
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, writer int)`);
    await db.query(`CREATE PUBLICATION ${table} FOR TABLE ${table}`);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  });

  after(async () => {
    await db.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => {});
    await db.query(`DROP PUBLICATION IF EXISTS ${table}`);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
  });

  it('see exactly the transactions committed before their consistent point, under concurrent commits', async () => {
    let stop = false;
    let nextId = 1;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      const c = makePgClient(config.postgres);
      await c.connect();
      try {
        while (!stop) await c.query(`INSERT INTO ${table} VALUES ($1, $2)`, [nextId++, w]);
      } finally {
        await c.end();
      }
    });
    const snapshots = new ChunkSnapshots(config.postgres, 'snaptest');
    const reader = makePgClient(config.postgres, { options: SESSION_OPTIONS });
    await reader.connect();
    await snapshots.connect('streamctl snapshot test');
    const seen: Array<{ point: bigint; ids: Set<number> }> = [];
    try {
      for (let i = 0; i < 25; i++) {
        const point = await snapshots.begin(reader);
        const { rows } = await reader.query<{ id: number }>(`SELECT id FROM ${table}`);
        await reader.query('COMMIT');
        seen.push({ point: parseLsn(point), ids: new Set(rows.map((r) => r.id)) });
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      stop = true;
      await Promise.all(writers);
      await snapshots.close();
      await reader.end();
    }
    const { rows: slots } = await db.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE 'streamctl_bf_snaptest_%'`);
    assert.equal(slots[0].n, 0, 'the temporary slots are gone');

    const committedAt = new Map<number, bigint>();
    await forEachSlotEvent(db, { slot, publication: table, source: { pipeline: 't', db: 't', slot } }, (e) => {
      committedAt.set(Number(e.after?.['id']), parseLsn(e.lsn!));
    });
    assert.ok(committedAt.size > 200, `enough concurrent commits to mean something (${committedAt.size})`);
    let straddled = 0;
    for (const s of seen) {
      const expected = [...committedAt].filter(([, lsn]) => lsn < s.point).map(([id]) => id);
      assert.deepEqual([...s.ids].sort((a, b) => a - b), expected.sort((a, b) => a - b), `snapshot at ${s.point.toString(16)}`);
      if (expected.length > 0 && expected.length < committedAt.size) straddled++;
    }
    assert.ok(straddled >= 20, `snapshots taken while commits went on (${straddled})`);
  });
});
