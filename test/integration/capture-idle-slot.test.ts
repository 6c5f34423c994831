import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { type Admin, kafkaClient } from '../../src/core/clients/rdkafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { loadConfig } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, startStream, waitFor } from '../helpers/pipeline.js';
import { unique } from '../helpers/stack.js';

describe('an idle capture slot', { timeout: 120_000 }, () => {
  const captured = unique('ia');
  const other = unique('ib');
  let db: pg.Client;
  let admin: Admin;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  let stream: ReturnType<typeof startStream> | undefined;

  before(async () => {
    pipeline = isolatedPipeline([`public.${captured}`], 'http://127.0.0.1:1/unused');
    const config = loadConfig({ env: pipeline.env });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${captured} (id int PRIMARY KEY); CREATE TABLE ${other} (id int PRIMARY KEY, pad text)`);
    admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
  });
  after(async () => {
    if (stream && stream.child.exitCode === null) {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
    await dropPipeline(db, admin, pipeline.tag);
    await db.query(`DROP TABLE IF EXISTS ${captured}, ${other}`);
    await db.end();
    await admin.disconnect();
  });

  it('does not hold WAL written for tables it does not capture', async () => {
    stream = startStream(pipeline.env, 'capture');
    await waitFor('capture to start', async () => stream!.log.text.includes('capture starting'));
    await db.query(`INSERT INTO ${other} SELECT g, repeat('x', 500) FROM generate_series(1, 20000) g`);
    const written = (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
    const slot = `streamctl_${pipeline.tag}`;
    // Nothing of it is for this pipeline: on the walsender's keepalives the slot moves past it.
    await waitFor('the slot to move past the unrelated WAL', async () => {
      const { rows } = await db.query<{ behind: boolean }>(
        'SELECT confirmed_flush_lsn < $2::pg_lsn AS behind FROM pg_replication_slots WHERE slot_name = $1',
        [slot, written],
      );
      return rows[0]?.behind === false;
    }, 60_000);
    const { rows } = await db.query<{ retained: string }>('SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS retained FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    assert.ok(Number(rows[0]!.retained) < 1024 * 1024, `still holds ${rows[0]!.retained} bytes`);
  });
});
