import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import type pg from 'pg';
import { type Admin, type Kafka, kafkaClient } from '../../src/core/clients/rdkafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { loadConfig } from '../../src/core/config/index.js';
import { validateEvent, type ChangeEvent } from '../../src/core/event/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { exited, startCapturer, streaming } from '../helpers/capturer.js';
import { runCli } from '../helpers/run-cli.js';
import { readTopic } from '../helpers/kafka-read.js';
import { unique } from '../helpers/stack.js';
import { createTypeFixture } from '../helpers/type-fixture.js';

describe('type fidelity end to end: PostgreSQL -> capture -> Kafka envelope', { timeout: 180_000 }, () => {
  const schema = unique('cf');
  const tag = unique('cfp');
  let db: pg.Client;
  let kafka: Kafka;
  let admin: Admin;
  let capturer: ChildProcess | undefined;
  let events: ChangeEvent[] = [];
  let expected: Record<string, unknown> = {};
  let big = '';
  let captureEnv: Record<string, string> = {};

  before(async () => {
    db = makePgClient(loadConfig({ env: {} }).postgres);
    await db.connect();
    const fixture = await createTypeFixture(db, schema);
    expected = fixture.expectedRow();
    big = fixture.big;
    const env = {
      STREAMCTL_PIPELINE_ID: tag,
      STREAMCTL_PIPELINE_TOPIC_PREFIX: tag,
      STREAMCTL_POSTGRES_TABLES: fixture.table,
      STREAMCTL_METRICS_PORT: '0',
      STREAMCTL_LOG_LEVEL: 'info',
    };
    captureEnv = env;
    const config = loadConfig({ env });
    kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
    admin = kafka.admin();
    await admin.connect();
    capturer = startCapturer(env, true);
    await streaming(capturer);
    await fixture.insertRow();
    await db.query(`UPDATE ${fixture.table} SET small = small + 1 WHERE id = 1`);
    // A column added while capture runs must carry on without a restart.
    await db.query(`ALTER TABLE ${fixture.table} ADD COLUMN added text DEFAULT 'new'`);
    await db.query(`UPDATE ${fixture.table} SET small = small + 1 WHERE id = 1`);
    await db.query(`DELETE FROM ${fixture.table} WHERE id = 1`);
    const records = await readTopic(kafkaClient(config.kafka, silentLogger), `${tag}.changes`, { enough: (rs) => rs.length >= 4, quietMs: 1500, timeoutMs: 60_000 });
    events = records.map((r) => JSON.parse(r.value) as ChangeEvent);
  });

  after(async () => {
    if (capturer && capturer.exitCode === null) {
      capturer.kill('SIGTERM');
      await exited(capturer);
    }
    await db.query('SELECT pg_drop_replication_slot($1)', [`streamctl_${tag}`]).catch(() => {});
    await db.query(`DROP PUBLICATION IF EXISTS streamctl_${tag}`).catch(() => {});
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
    await admin.deleteTopics({ topics: [`${tag}.changes`, `${tag}.checkpoints`, `${tag}.dlq`] }).catch(() => {});
    await admin.disconnect();
  });

  it('writes insert, update, update, delete, each a valid v1 envelope', () => {
    assert.deepEqual(
      events.map((e) => e.op),
      ['insert', 'update', 'update', 'delete'],
    );
    for (const e of events) {
      const v = validateEvent(e);
      assert.ok(v.ok, v.ok ? '' : v.errors.join('; '));
    }
  });

  it('carries a row of every type into the envelope unchanged', () => {
    assert.deepEqual(events[0]?.after, expected);
    assert.deepEqual(events[0]?.key, { id: '1' });
  });

  it('marks the unchanged TOASTed column instead of writing it as null', () => {
    const update = events[1]!;
    assert.deepEqual(update.unchanged, ['big']);
    assert.equal('big' in (update.after ?? {}), false);
    assert.equal(update.after?.['small'], 2);
    assert.notEqual(big.length, 0);
  });

  it('carries on after a column is added, without a restart', () => {
    assert.equal(events[2]?.after?.['added'], 'new');
    assert.equal(events[2]?.after?.['small'], 3);
  });

  it('shows in status: the slot active with its lag, and the last checkpoint', async () => {
    const r = await runCli(['--json', 'status'], captureEnv);
    const report = JSON.parse(r.stdout) as {
      capture: { slot: { exists: boolean; active: boolean; lag_bytes: number }; checkpoint: { events_total: number; complete: boolean }; errors: string[] };
    };
    assert.deepEqual(report.capture.errors, []);
    assert.equal(report.capture.slot.exists, true);
    assert.equal(report.capture.slot.active, true);
    assert.ok(report.capture.slot.lag_bytes >= 0);
    assert.equal(report.capture.checkpoint.events_total, 4);
    assert.equal(report.capture.checkpoint.complete, true);
  });

  it('keys the delete and orders ids by commit', () => {
    assert.deepEqual(events[3]?.key, { id: '1' });
    const ids = events.map((e) => e.id);
    assert.deepEqual([...ids].sort(), ids, 'ids sort in commit order');
  });
});
