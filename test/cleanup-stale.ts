import { makePgClient } from '../src/core/clients/postgres.js';
import { defaultConfig } from '../src/core/config/index.js';
import { isStale } from './helpers/stale-slots.js';

/**
 * scripts/test runs this before the suite: drops the inactive slots and the publications
 * that earlier, killed test runs left on the local stack (each slot holds WAL, GBs after a
 * while). Only names made by test/helpers/stack.ts unique() and older than an hour; never
 * an active slot. Prints what it dropped.
 */
const HOUR = 3_600_000;
const db = makePgClient(defaultConfig().postgres);
await db.connect();
try {
  const now = Date.now();
  const { rows: slots } = await db.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots WHERE NOT active');
  for (const { slot_name } of slots) {
    if (!isStale(slot_name, now, HOUR)) continue;
    await db.query('SELECT pg_drop_replication_slot($1)', [slot_name]).then(
      () => console.log(`dropped stale test slot ${slot_name}`),
      (err: Error) => console.log(`could not drop slot ${slot_name}: ${err.message}`),
    );
  }
  const { rows: pubs } = await db.query<{ pubname: string }>('SELECT pubname FROM pg_publication');
  for (const { pubname } of pubs) {
    if (!isStale(pubname, now, HOUR)) continue;
    await db.query(`DROP PUBLICATION IF EXISTS "${pubname.replace(/"/g, '""')}"`);
    console.log(`dropped stale test publication ${pubname}`);
  }
} finally {
  await db.end();
}
