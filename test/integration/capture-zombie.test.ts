import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import type pg from 'pg';
import { type Admin, type Kafka, kafkaClient } from '../../src/core/clients/rdkafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { readCheckpoint } from '../../src/core/capture/kafka-writer.js';
import { loadConfig, type Config } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { collectStderr, exited, startCapturer, streaming } from '../helpers/capturer.js';
import { readTopic } from '../helpers/kafka-read.js';
import { unique } from '../helpers/stack.js';

describe('a zombie capturer', () => {
  const tag = unique('zombie');
  const table = `${tag}_t`;
  const env = {
    STREAMCTL_PIPELINE_ID: tag,
    STREAMCTL_PIPELINE_TOPIC_PREFIX: tag,
    STREAMCTL_POSTGRES_TABLES: `public.${table}`,
    STREAMCTL_METRICS_PORT: '0',
    STREAMCTL_LOG_LEVEL: 'info',
  };
  const config: Config = loadConfig({ env });
  let db: pg.Client;
  let kafka: Kafka;
  let admin: Admin;
  const children: ChildProcess[] = [];

  before(async () => {
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
    admin = kafka.admin();
    await admin.connect();
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) (c.kill('SIGCONT'), c.kill('SIGKILL'));
    for (const c of children) await exited(c);
    await db.query('SELECT pg_drop_replication_slot($1)', [`streamctl_${tag}`]).catch(() => {});
    await db.query(`DROP PUBLICATION IF EXISTS streamctl_${tag}`).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.deleteTopics({ topics: [`${tag}.changes`, `${tag}.checkpoints`, `${tag}.dlq`] }).catch(() => {});
    await admin.disconnect();
  });

  const insert = (from: number, to: number) => db.query(`INSERT INTO ${table} SELECT g, 'v' || g FROM generate_series($1::int, $2::int) g`, [from, to]);
  async function waitForEvents(n: number): Promise<void> {
    const deadline = Date.now() + 60_000;
    while ((await readCheckpoint(admin, config).catch(() => null))?.events_total !== n) {
      if (Date.now() > deadline) throw new Error(`checkpoint never reached ${n}: ${JSON.stringify(await readCheckpoint(admin, config))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('is fenced by a second capturer of the same pipeline, which carries on; nothing is written twice', async () => {
    const first = startCapturer(env, true);
    children.push(first);
    const firstLog = collectStderr(first);
    await streaming(first);
    await insert(1, 300);
    await waitForEvents(300);

    // Freeze the first capturer: it still holds its Kafka producer and its slot session.
    first.kill('SIGSTOP');
    await insert(301, 600);
    const second = startCapturer(env, true);
    children.push(second);
    await streaming(second);
    await waitForEvents(600);

    // The zombie wakes up with changes in its buffers. It must not write them (fenced in
    // Kafka) nor take the slot back (which would fence the second one in turn).
    first.kill('SIGCONT');
    assert.equal(await exited(first), 1, firstLog.text.slice(-3000));
    assert.match(firstLog.text, /another capturer with the same pipeline id took over/);

    await insert(601, 700);
    await waitForEvents(700);
    second.kill('SIGTERM');
    assert.equal(await exited(second), 0);

    const records = await readTopic(kafkaClient(config.kafka, silentLogger), `${tag}.changes`, { enough: (rs) => rs.length >= 700, quietMs: 2000, timeoutMs: 60_000 });
    const ids = records.map((r) => (JSON.parse(r.value) as { id: string }).id);
    assert.equal(new Set(ids).size, 700, 'every change once');
    assert.equal(ids.length, 700, 'no change twice');
  });
});
