import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { LogicalReplicationService, type Pgoutput } from 'pg-logical-replication';
import { makePgClient } from '../../src/core/clients/postgres.js';
import {
  builtinTypes,
  decodeQueryRow,
  decodeTuple,
  SESSION_OPTIONS,
  typeInfoFromRow,
  TypeRegistry,
  RAW_TEXT_TYPES as RAW_TEXT,
} from '../../src/core/source/pg-types.js';
import { RawTextPgoutputPlugin, type TupleValues } from '../../src/core/source/pgoutput-plugin.js';
import { stackConfig, unique } from '../helpers/stack.js';
import { COLUMNS, createTypeFixture } from '../helpers/type-fixture.js';



describe('type fidelity: pgoutput and plain queries give the same JSON', { timeout: 120_000 }, () => {
  const schema = unique('tf');
  const name = unique('tf_slot');
  let table = '';
  let big = '';
  let expectedRow: () => Record<string, unknown> = () => ({});
  const messages: Pgoutput.Message[] = [];
  let client: pg.Client;
  let registry: TypeRegistry;
  let service: LogicalReplicationService | undefined;
  let slotCreated = false;
  let queryRow: Record<string, unknown> = {};
  let queryNullRow: Record<string, unknown> = {};


  before(async () => {
    const pgConfig = stackConfig().postgres;
    client = makePgClient(pgConfig, { options: SESSION_OPTIONS, types: RAW_TEXT });
    await client.connect();
    registry = new TypeRegistry((sql, params) => client.query(sql, params));

    const fixture = await createTypeFixture(client, schema);
    ({ table, big, expectedRow } = fixture);
    await client.query(`CREATE PUBLICATION ${name} FOR TABLE ${table}`);
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [name]);
    slotCreated = true;

    await fixture.insertRow();
    await client.query(`INSERT INTO ${table} (id, small) VALUES (2, 1)`);
    const selected = await client.query(`SELECT * FROM ${table} ORDER BY id`);
    await registry.resolveForFields(selected.fields);
    queryRow = decodeQueryRow(selected.fields, selected.rows[0] as Record<string, unknown>, registry);
    queryNullRow = decodeQueryRow(selected.fields, selected.rows[1] as Record<string, unknown>, registry);
    await client.query(`UPDATE ${table} SET small = small + 1 WHERE id = 1`);
    await client.query(`DELETE FROM ${table} WHERE id = 1`);

    service = new LogicalReplicationService(
      { ...connectionOf(pgConfig), options: SESSION_OPTIONS },
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
    const replication = service;
    const seenDeleteCommit = new Promise<void>((resolve, reject) => {
      let deleted = false;
      replication.on('data', (_lsn: string, msg: Pgoutput.Message) => {
        messages.push(msg);
        if (msg.tag === 'delete') deleted = true;
        if (msg.tag === 'commit' && deleted) resolve();
      });
      replication.on('error', reject);
      setTimeout(() => reject(new Error(`replication stream: no DELETE commit within 30 s (${messages.length} messages)`)), 30_000).unref();
    });
    const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: [name] });
    const streaming = replication.subscribe(plugin, name);
    streaming.catch(() => undefined); // its failures also arrive as 'error' events
    await seenDeleteCommit;
    await replication.stop();
    await streaming;

    const relation = messages.find((m): m is Pgoutput.MessageRelation => m.tag === 'relation');
    assert.ok(relation, 'a relation message');
    await registry.resolveForRelation(relation);
  });

  after(async () => {
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>): Promise<void> => {
      try {
        await step();
      } catch (e) {
        errors.push(e);
      }
    };
    await attempt(async () => service?.destroy());
    if (client) {
      if (slotCreated) await attempt(() => dropSlot(client, name));
      await attempt(() => client.query(`DROP PUBLICATION IF EXISTS ${name}`));
      await attempt(() => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
      await attempt(() => client.end());
    }
    if (errors.length > 0) throw errors[0];
  });

  const changes = <T extends Pgoutput.Message['tag']>(tag: T): Array<Extract<Pgoutput.Message, { tag: T }>> =>
    messages.filter((m): m is Extract<Pgoutput.Message, { tag: T }> => m.tag === tag);

  it('decodes the inserted row to exactly the expected JSON values', () => {
    const [insert] = changes('insert');
    assert.ok(insert);
    const { row, unchanged } = decodeTuple(insert.relation, insert.new, registry);
    assert.deepEqual(unchanged, []);
    assert.deepEqual(row, expectedRow());
  });

  it('a row of NULLs decodes to nulls', () => {
    const inserts = changes('insert');
    assert.equal(inserts.length, 2);
    const second = inserts[1];
    assert.ok(second);
    const expected = Object.fromEntries(Object.keys(expectedRow()).map((column) => [column, null]));
    Object.assign(expected, { id: '2', small: 1 });
    assert.deepEqual(decodeTuple(second.relation, second.new, registry), { row: expected, unchanged: [] });
    assert.equal(JSON.stringify(queryNullRow), JSON.stringify(expected));
  });

  it('the update leaves the unchanged TOASTed column out of the row and lists it in unchanged', () => {
    const [update] = changes('update');
    assert.ok(update);
    const big = update.relation.columns.findIndex((c) => c.name === 'big');
    const values = update.new as unknown as TupleValues;
    assert.ok(big >= 0 && big < values.length && values[big] === undefined, 'the plugin: present (within the tuple), value undefined');
    const { row, unchanged } = decodeTuple(update.relation, update.new, registry);
    assert.deepEqual(unchanged, ['big']);
    const { big: _big, ...rest } = expectedRow();
    assert.deepEqual(row, { ...rest, small: 2 });
  });

  it('the delete carries the key only', () => {
    const [del] = changes('delete');
    assert.ok(del?.key);
    assert.deepEqual(decodeTuple(del.relation, del.key, registry), { row: { id: '1' }, unchanged: [] });
  });

  it('a plain query of the same row gives identical JSON to the CDC insert', () => {
    const [insert] = changes('insert');
    assert.ok(insert);
    const cdc = decodeTuple(insert.relation, insert.new, registry).row;
    assert.equal(JSON.stringify(queryRow), JSON.stringify(cdc));
  });

  it('timestamptz decodes to the same UTC value whatever session time zone printed it', async () => {
    const values = [
      '2024-02-29 23:59:59.999999-08', '2024-03-31 01:30:00.5+00', '2024-10-27 00:59:59.000001+00', '1900-01-01 00:00:00+00',
      '1883-11-18 12:00:00+00', '0001-01-01 00:00:00+00', '0044-03-15 12:00:00.25+00 BC', '9999-12-31 23:59:59.999999+00', 'infinity',
    ];
    const sql = `SELECT ARRAY[${values.map((v) => `'${v}'::timestamptz`).join(', ')}] AS ts`;
    const decodedIn = async (zone: string): Promise<unknown> => {
      await client.query(`SET TimeZone = '${zone}'`);
      const result = await client.query(sql);
      return decodeQueryRow(result.fields, result.rows[0] as Record<string, unknown>, registry)['ts'];
    };
    try {
      const utc = await decodedIn('UTC');
      for (const zone of ['Asia/Kolkata', 'America/St_Johns', 'Asia/Kathmandu', 'Pacific/Kiritimati', 'Europe/Amsterdam', 'America/New_York']) {
        assert.deepEqual(await decodedIn(zone), utc, zone);
      }
      assert.deepEqual((utc as unknown[]).slice(0, 2), ['2024-03-01T07:59:59.999999Z', '2024-03-31T01:30:00.5Z']);
    } finally {
      await client.query('SET TimeZone = UTC');
    }
  });

  it('the static built-in types agree with pg_type', async () => {
    const builtins = builtinTypes();
    const { rows } = await client.query(TypeRegistry.RESOLVE_SQL, [builtins.map((t) => String(t.oid))]);
    const actual = new Map(rows.map((row) => [typeInfoFromRow(row).oid, typeInfoFromRow(row)]));
    for (const expected of builtins) assert.deepEqual(actual.get(expected.oid), expected, `type ${expected.oid} ${expected.name}`);
  });
});

function connectionOf(config: { host: string; port: number; user: string; password: string; database: string }) {
  return { host: config.host, port: config.port, user: config.user, password: config.password, database: config.database };
}

/** Drops the slot once its walsender is gone; a leftover slot would keep WAL forever. */
async function dropSlot(client: pg.Client, slot: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const { rows } = await client.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (rows.length === 0) return;
    if (rows[0]?.['active'] !== 't') {
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return;
    }
    await sleep(100);
  }
  // Still held after 5 s: the holder is this test's own walsender; end it by pid, then drop.
  await client.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active', [slot]);
  await sleep(500);
  await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
}
