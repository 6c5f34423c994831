import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { type Admin, kafkaClient } from '../../src/core/clients/rdkafka.js';
import type { BigQuery } from '@google-cloud/bigquery';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { derivedNames } from '../../src/core/config/names.js';
import { loadConfig } from '../../src/core/config/index.js';
import type { StatusReport } from '../../src/core/health/types.js';
import { silentLogger } from '../../src/core/logger.js';
import { onceMoreOnReset } from '../../src/core/sinks/bigquery/errors.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, startStream, waitFor } from '../helpers/pipeline.js';
import { freePort } from '../helpers/ports.js';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';

interface Ready {
  history_lost?: Array<{ sink: string; message: string; lost: Array<{ partition: number; first_retained: string }> }>;
}

/**
 * The BigQuery changes table dropped behind a running stream (on the emulator, in this
 * pipeline's own dataset). The sink recreates it; the deliverer then replays what the changes
 * topic still holds (its partitions sought to their earliest offset) and says what is gone
 * for good. changes_once dedupes by event id, so the replay counts each event once.
 */
describe('BigQuery history lost with a dropped table, and replayed from the topic', { timeout: 300_000 }, () => {
  const table = unique('bqh');
  let db: pg.Client;
  let admin: Admin;
  let bq: BigQuery;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  let stream: ReturnType<typeof startStream>;
  let readyUrl = '';
  let topic = '';

  const events = async () => Number(((await onceMoreOnReset(() => bq.query({ query: `SELECT COUNT(*) AS n FROM \`${pipeline.tag}.changes_once\`` })))[0] as Array<{ n: number }>)[0]!.n);
  const latestRows = async () => (await onceMoreOnReset(() => bq.query({ query: `SELECT row_key, after FROM \`${pipeline.tag}.latest\` WHERE source_table = '${table}'` })))[0] as Array<{ row_key: string; after: string }>;
  const dropTable = () => onceMoreOnReset(() => bq.dataset(pipeline.tag).table('changes').delete());
  const ready = async () => (await (await fetch(readyUrl)).json()) as Ready;
  const status = async () => JSON.parse((await runCli(['--json', 'status'], pipeline.env)).stdout) as StatusReport;
  const expectLatestEqualsPostgres = async () => {
    const { rows } = await db.query<{ id: number; n: number }>(`SELECT id, n FROM ${table} ORDER BY id`);
    const latest = await waitFor('BigQuery latest to hold every row', async () => {
      const r = await latestRows();
      return r.length === rows.length ? r : false;
    }, 120_000);
    const byId = new Map(latest.map((r) => [(JSON.parse(r.row_key) as { id: number }).id, JSON.parse(r.after) as { n: number }]));
    for (const row of rows) assert.equal(byId.get(row.id)?.n, row.n, `row ${row.id}`);
  };

  before(async () => {
    const port = await freePort();
    pipeline = isolatedPipeline([`public.${table}`], 'http://127.0.0.1:9/unused', {
      STREAMCTL_METRICS_PORT: String(port),
      STREAMCTL_SINKS_REDIS_ENABLED: 'false',
      STREAMCTL_SINKS_HTTP_ENABLED: 'false',
      STREAMCTL_KAFKA_PARTITIONS: '2',
    });
    readyUrl = `http://127.0.0.1:${port}/ready`;
    const config = loadConfig({ env: pipeline.env });
    topic = derivedNames(config).changesTopic;
    bq = makeBigQuery(config.sinks.bigquery, { autoRetry: false });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, n int)`);
    admin = kafkaClient(config.kafka, silentLogger, { retries: 10 }).admin();
    await admin.connect();
    stream = startStream(pipeline.env, 'all');
    await waitFor('/ready', async () => (await fetch(readyUrl)).status === 200, 90_000);
    await db.query(`INSERT INTO ${table} SELECT g, 0 FROM generate_series(1, 100) g`);
    await db.query(`UPDATE ${table} SET n = 1 WHERE id <= 50`);
    await waitFor('150 events in BigQuery', async () => (await events()) === 150, 120_000);
  });

  after(async () => {
    if (stream.child.exitCode === null) {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
    await onceMoreOnReset(() => bq.dataset(pipeline.tag).delete({ force: true })).catch(() => {});
    await dropPipeline(db, admin, pipeline.tag);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.disconnect();
  });

  it('the topic still holds everything: the new table gets every event back, once, and nothing is said lost', async () => {
    await dropTable();
    await db.query(`INSERT INTO ${table} SELECT g, 2 FROM generate_series(101, 105) g`);
    await waitFor('155 events in BigQuery again', async () => (await events()) === 155, 120_000);
    const r = await ready();
    assert.equal(r.history_lost?.length, 1, JSON.stringify(r));
    assert.match(r.history_lost![0]!.message, /table \S+\.changes was dropped: recreated empty: history lost is nothing: the changes topic still holds every event/);
    assert.deepEqual(r.history_lost![0]!.lost, []);
    await expectLatestEqualsPostgres();
    assert.match(stream.log.text, /history lost is nothing/);
  });

  it('the topic was truncated: the retained events are replayed, and the lost range is in the log and in status', async () => {
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.deleteTopicRecords({ topic, partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })) });
    await dropTable();
    await db.query(`UPDATE ${table} SET n = 3 WHERE id <= 3`);
    // Only the 3 updates are still in the topic: the new table holds them, once.
    await waitFor('the 3 retained events in BigQuery', async () => (await events().catch(() => -1)) === 3, 120_000);
    const r = await waitFor('/ready to say what was lost', async () => {
      const x = await ready();
      return (x.history_lost?.[0]?.lost.length ?? 0) > 0 && x;
    }, 60_000);
    const lost = r.history_lost![0]!;
    assert.deepEqual(
      lost.lost.map((p) => p.first_retained),
      ends.filter((e) => e.high !== '0').map((e) => e.high),
      'the range lost is every offset before where the topic now starts',
    );
    assert.match(lost.message, /history lost is the events before offset \d+ of partition \d+/);
    assert.match(stream.log.text, /history lost is the events before offset/);
    const s = await status();
    const warning = s.warnings.find((w) => w.kind === 'history_lost' && /offset \d+ of partition/.test(w.message));
    assert.ok(warning, JSON.stringify(s.warnings));
    assert.match(warning.fix, /streamctl backfill --sink bigquery/);
  });

  it('the table dropped while stream was stopped: found at start, the retained events replayed', async () => {
    stream.child.kill('SIGTERM');
    await exited(stream.child);
    await dropTable();
    stream = startStream(pipeline.env, 'all');
    await waitFor('the 3 retained events in the table made at start', async () => (await events().catch(() => -1)) === 3, 120_000);
    const r = await waitFor('/ready to say what was lost', async () => {
      const x = await ready().catch(() => null);
      return (x?.history_lost?.length ?? 0) > 0 && x;
    }, 60_000);
    assert.match(r!.history_lost![0]!.message, /^table \S+ did not exist when stream started: created empty: history lost is the events before offset \d+ of partition \d+/);
  });
});
