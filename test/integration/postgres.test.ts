import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { stackConfig, unique } from '../helpers/stack.js';

describe('PostgreSQL of the local stack', () => {
  let client: pg.Client;
  before(async () => {
    client = makePgClient(stackConfig().postgres);
    await client.connect();
  });
  after(() => client.end());

  it('runs with wal_level = logical', async () => {
    const { rows } = await client.query<{ wal_level: string }>('SHOW wal_level');
    assert.equal(rows[0]?.wal_level, 'logical');
  });

  it('creates and drops a publication and a pgoutput logical slot, and the slot sees a change', async () => {
    const table = unique('t');
    const name = unique('slot');
    await client.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    await client.query(`CREATE PUBLICATION ${name} FOR TABLE ${table}`);
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [name]);
    try {
      await client.query(`INSERT INTO ${table} VALUES (1, 'x')`);
      const changes = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`,
        [name, name],
      );
      // BEGIN, RELATION, INSERT, COMMIT at least.
      assert.ok(Number(changes.rows[0]?.n) >= 4, `slot saw ${changes.rows[0]?.n} messages`);
    } finally {
      await client.query('SELECT pg_drop_replication_slot($1)', [name]);
      await client.query(`DROP PUBLICATION ${name}`);
      await client.query(`DROP TABLE ${table}`);
    }
    const left = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [name]);
    assert.equal(left.rowCount, 0);
  });
});
