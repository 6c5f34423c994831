import type pg from 'pg';
import { EnvironmentNotReadyError } from '../errors.js';
import { missingTables, readinessProblems, readSettings } from '../postgres/readiness.js';
import { NoRowIdentityError, readTableIdentity } from '../source/row-identity.js';
import { quoteIdent, quoteQualified } from '../postgres/sql.js';

/**
 * Everything capture needs from PostgreSQL, checked before anything is created, each
 * problem with how to fix it (EnvironmentNotReadyError: exit 4). Then the publication and
 * the slot are created if missing: running setup twice changes nothing.
 */
export interface CaptureSetup {
  slot: string;
  publication: string;
  /** `schema.table`; empty means every table of the database. */
  tables: string[];
  user: string;
}

export interface SlotState {
  created: boolean;
  confirmedFlushLsn: string;
  activePid: number | null;
}



export async function preflight(client: pg.Client, setup: CaptureSetup): Promise<void> {
  const s = await readSettings(client, setup.slot);
  // Our own slot already exists: it needs no free one.
  const problems = readinessProblems(s.slot_exists ? { ...s, slots_used: '0' } : s, setup.user).map((p) => `${p.problem}: ${p.fix}`);

  const missing = await missingTables(client, setup.tables);
  for (const t of missing) problems.push(`table ${t} does not exist: create it, or remove it from postgres.tables`);

  // UPDATE and DELETE on a published table without a replica identity fail in PostgreSQL
  // itself: adding such a table would break the application, not just capture.
  const unkeyed = await client.query<{ name: string }>(
    `SELECT n.nspname || '.' || c.relname AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
        AND ($1::text[] IS NULL OR n.nspname || '.' || c.relname = ANY($1::text[]))
        AND (c.relreplident = 'n'
             OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
      ORDER BY 1`,
    [setup.tables.length > 0 ? setup.tables : null],
  );
  for (const { name } of unkeyed.rows) {
    problems.push(
      `table ${name} has no primary key or replica identity, so its updates and deletes cannot be captured: ` +
        `add a primary key, or run ALTER TABLE ${name} REPLICA IDENTITY FULL (or USING INDEX on a unique index)`,
    );
  }
  for (const name of await fullTablesWithoutKey(client, setup.tables)) problems.push(new NoRowIdentityError(name).message);
  if (problems.length > 0) {
    throw new EnvironmentNotReadyError(`PostgreSQL is not ready for capture (${problems.length} problem${problems.length === 1 ? '' : 's'})`, problems);
  }
}

/**
 * FULL tables with no key at all: capture would have to key their rows by their whole
 * content, a key that changes with every update (see row-identity.ts).
 */
async function fullTablesWithoutKey(client: pg.Client, tables: string[]): Promise<string[]> {
  const { rows } = await client.query<{ oid: number; name: string }>(
    `SELECT c.oid, n.nspname || '.' || c.relname AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND c.relreplident = 'f'
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
        AND ($1::text[] IS NULL OR n.nspname || '.' || c.relname = ANY($1::text[]))
      ORDER BY 2`,
    [tables.length > 0 ? tables : null],
  );
  const out: string[] = [];
  for (const row of rows) {
    const identity = await readTableIdentity((sql, params) => client.query(sql, params), row.oid);
    if (identity && identity.columns.length === 0) out.push(row.name);
  }
  return out;
}

/** Creates the publication, or brings its table list in line with the config. */
export async function ensurePublication(client: pg.Client, setup: CaptureSetup): Promise<'created' | 'updated' | 'unchanged'> {
  const existing = await client.query<{ puballtables: boolean }>('SELECT puballtables FROM pg_publication WHERE pubname = $1', [setup.publication]);
  const target = setup.tables.length > 0 ? `TABLE ${setup.tables.map(quoteQualified).join(', ')}` : 'ALL TABLES';
  if (existing.rowCount === 0) {
    await client.query(`CREATE PUBLICATION ${quoteIdent(setup.publication)} FOR ${target}`);
    return 'created';
  }
  const allTables = existing.rows[0]!.puballtables;
  if (setup.tables.length === 0) {
    if (allTables) return 'unchanged';
    throw new EnvironmentNotReadyError(`publication ${setup.publication} exists for a list of tables, but postgres.tables is empty (all tables)`, [
      `drop it (DROP PUBLICATION ${setup.publication}) to let streamctl recreate it FOR ALL TABLES, or list the tables in postgres.tables`,
    ]);
  }
  if (allTables) {
    throw new EnvironmentNotReadyError(`publication ${setup.publication} is FOR ALL TABLES, but postgres.tables lists tables`, [
      `drop it (DROP PUBLICATION ${setup.publication}) to let streamctl recreate it for the listed tables, or empty postgres.tables`,
    ]);
  }
  const current = await client.query<{ name: string }>(
    `SELECT schemaname || '.' || tablename AS name FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`,
    [setup.publication],
  );
  const have = current.rows.map((r) => r.name).sort();
  const want = [...setup.tables].sort();
  if (have.join(',') === want.join(',')) return 'unchanged';
  await client.query(`ALTER PUBLICATION ${quoteIdent(setup.publication)} SET ${target}`);
  return 'updated';
}

/** Creates the pgoutput slot if missing; says where it stands and who holds it. */
export async function ensureSlot(client: pg.Client, slot: string): Promise<SlotState> {
  const read = () =>
    client.query<{ confirmed_flush_lsn: string | null; active_pid: number | null; plugin: string }>(
      'SELECT confirmed_flush_lsn::text, active_pid, plugin FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
  let created = false;
  let found = await read();
  if (found.rowCount === 0) {
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    created = true;
    found = await read();
  }
  const row = found.rows[0]!;
  if (row.plugin !== 'pgoutput') {
    throw new EnvironmentNotReadyError(`replication slot ${slot} uses the '${row.plugin}' plugin, capture needs 'pgoutput'`, [
      `drop it (SELECT pg_drop_replication_slot('${slot}')) or set postgres.slot to another name`,
    ]);
  }
  return { created, confirmedFlushLsn: row.confirmed_flush_lsn ?? '0/0', activePid: row.active_pid };
}
