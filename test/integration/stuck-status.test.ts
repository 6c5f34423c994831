import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { setTopicOverrides } from '../../src/core/clients/kafka-configs.js';
import { kafkaClient, type Admin } from '../../src/core/clients/rdkafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { derivedNames, loadConfig } from '../../src/core/config/index.js';
import type { StatusReport } from '../../src/core/health/types.js';
import { silentLogger } from '../../src/core/logger.js';
import { HttpReceiver } from '../../src/receiver/server.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, RECEIVER_KEY, startStream, waitFor } from '../helpers/pipeline.js';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A stuck capture and dangerous slots on the real stack. Kafka is made to refuse capture's
 * records (the pipeline's own changes topic gets a 1 KiB max.message.bytes while capture
 * runs), so capture retries the same position forever, as with any record Kafka refuses:
 * /ready must turn false and `status` exit 3 naming capture, and both recover when Kafka
 * takes the records again. Then, with the stream stopped, `status` warns about this
 * pipeline's inactive slot, another inactive slot (named) and unbounded slot WAL.
 */
describe('stuck detection and slot warnings', { timeout: 240_000 }, () => {
  const table = unique('stk');
  const otherSlot = unique('keys_other');
  const receiver = new HttpReceiver({ hmacKey: RECEIVER_KEY });
  let db: pg.Client;
  let admin: Admin;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  let stream: ReturnType<typeof startStream> | undefined;
  let readyUrl = '';

  before(async () => {
    const address = await receiver.listen(0);
    const port = await freePort();
    pipeline = isolatedPipeline([`public.${table}`], `http://127.0.0.1:${address.port}/events`, {
      STREAMCTL_METRICS_PORT: String(port),
      STREAMCTL_HEALTH_STUCK_AFTER_SECONDS: '3',
      STREAMCTL_HEALTH_SLOT_WAL_WARN_BYTES: String(1024 * 1024),
      STREAMCTL_KAFKA_RETRY_MAX_DELAY_MS: '1000',
    });
    readyUrl = `http://127.0.0.1:${port}/ready`;
    const config = loadConfig({ env: pipeline.env });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, doc text)`);
    admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
  });

  after(async () => {
    if (stream?.child.exitCode === null) {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
    await db.query('SELECT pg_drop_replication_slot($1)', [otherSlot]).catch(() => {});
    await dropPipeline(db, admin, pipeline.tag);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.disconnect();
    await receiver.close();
  });

  const ready = async () => {
    const res = await fetch(readyUrl);
    return { status: res.status, body: (await res.json()) as { ready: boolean; pipeline: string; stuck: Array<{ component: string; reason: string }> } };
  };
  const status = async () => {
    const r = await runCli(['--json', 'status'], pipeline.env);
    return { code: r.code, report: JSON.parse(r.stdout) as StatusReport, stderr: r.stderr };
  };
  const setMaxMessageBytes = (bytes: number) => {
    const config = loadConfig({ env: pipeline.env });
    return setTopicOverrides(config.kafka, derivedNames(config).changesTopic, [{ name: 'max.message.bytes', value: String(bytes) }]);
  };

  it('turns /ready false and status exit 3 while capture retries the same position, and recovers', async () => {
    stream = startStream(pipeline.env, 'capture');
    await waitFor('capture to stream', async () => stream!.log.text.includes('capture starting'), 60_000);
    await waitFor('/ready', async () => (await ready()).status === 200);
    await db.query(`INSERT INTO ${table} VALUES (0, 'fits')`);

    await setMaxMessageBytes(1024);
    await db.query(`INSERT INTO ${table} VALUES (1, $1)`, ['x'.repeat(4000)]);
    const stuck = await waitFor('/ready to say capture is stuck', async () => {
      // A stream that died or stopped answering says why (a clean-clone run once got only "fetch failed" here).
      if (stream!.child.exitCode !== null) throw new Error(`the stream exited with ${stream!.child.exitCode}: ${stream!.log.text.slice(-3000)}`);
      const r = await ready().catch((err: Error) => {
        throw new Error(`${err.message} (${(err.cause as Error | undefined)?.message ?? 'no cause'}); the stream's log:\n${stream!.log.text.slice(-3000)}`);
      });
      return r.status === 503 && r.body.stuck.some((s) => s.component === 'capture') ? r.body : false;
    }, 60_000);
    assert.equal(stuck.ready, false);
    // The position is the last one this process moved to, if it moved at all before Kafka refused.
    assert.match(stuck.stuck[0]!.reason, /capture has had work and made no progress( past (checkpoint|lsn) \S+)? for [\d.]+ s \(health\.stuckAfterSeconds 3\)/);

    const s = await status();
    assert.equal(s.code, 3, s.stderr);
    assert.deepEqual(s.report.stuck?.map((x) => x.component), ['capture']);
    const text = await runCli(['status'], { ...pipeline.env, NO_COLOR: '1' });
    assert.match(text.stdout, /Stuck:\n {2}- capture has had work and made no progress/);

    await setMaxMessageBytes(8 * 1024 * 1024);
    await waitFor('/ready again once Kafka takes the records', async () => (await ready()).status === 200, 60_000);
    assert.deepEqual((await status()).report.stuck, []);
  });

  it('warns about this pipeline\'s inactive slot, other inactive slots (named) and unbounded slot WAL', async () => {
    stream!.child.kill('SIGTERM');
    await exited(stream!.child);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [otherSlot]);
    // About 4 MiB of WAL (random, so TOAST compression does not shrink it) past both slots'
    // restart points: over the 1 MiB threshold set above.
    await db.query(`INSERT INTO ${table} SELECT g, (SELECT string_agg(md5(random()::text || g.g || i), '') FROM generate_series(1, 64) i) FROM generate_series(100, 2100) g`);
    const { report, code } = await status();
    const slot = derivedNames(loadConfig({ env: pipeline.env })).slot;
    const own = report.warnings.find((w) => w.kind === 'inactive_slot');
    assert.equal(own?.slot, slot);
    assert.ok((own?.retained_wal_bytes ?? 0) > 1024 * 1024);
    assert.match(own!.fix, /start capture \(streamctl stream\)/);
    const other = report.warnings.find((w) => w.kind === 'inactive_other_slot' && w.slot === otherSlot);
    assert.ok(other, `no warning names ${otherSlot}: ${JSON.stringify(report.warnings.map((w) => w.slot))}`);
    assert.match(other.fix, new RegExp(`pg_drop_replication_slot\\('${otherSlot}'\\)`));
    const { rows } = await db.query<{ v: string }>(`SELECT current_setting('max_slot_wal_keep_size') AS v`);
    assert.equal(report.warnings.some((w) => w.kind === 'unbounded_slot_wal'), rows[0]!.v === '-1');
    assert.notEqual(code, 3, 'warnings alone do not fail status');
  });
});
