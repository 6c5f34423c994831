import { type Admin, type Kafka, kafkaClient } from '../../src/core/clients/rdkafka.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { loadConfig, type Config } from '../../src/core/config/index.js';
import { changeEventId, recordKey } from '../../src/core/event/identity.js';
import { silentLogger } from '../../src/core/logger.js';
import { PipelineMetrics } from '../../src/core/metrics.js';
import { ReplayRun } from '../../src/core/replay/execute.js';
import { readRow } from '../../src/core/sinks/redis/sink.js';
import { HttpReceiver } from '../../src/receiver/server.js';
import { exited } from '../helpers/capturer.js';
import { readTopic } from '../helpers/kafka-read.js';
import { dropPipeline, isolatedPipeline, RECEIVER_KEY, startStream, waitFor } from '../helpers/pipeline.js';
import { BIN, runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';
import { tempDir } from '../helpers/temp-dir.js';

interface Summary {
  letters: number;
  states: Record<string, number>;
  duplicates: number;
  open_by: Record<string, Record<string, Record<string, number>>>;
}
interface View {
  event_id: string;
  sink: string;
  table: string;
  key: string;
  state: string;
  error_class: string;
  attempts: number;
  source: { topic: string; partition: number; offset: string };
  replay_run: string | null;
  event?: { after?: Record<string, unknown> };
}
interface Run {
  run: string;
  complete: boolean;
  counts: Record<string, number>;
  bySink: Record<string, Record<string, number>>;
  matched: number;
}

/**
 * replay-dlq on the real stack, with letters made by real failures of a running `stream`:
 * an HTTP 422 from the receiver, rows invalid under a per-table JSON Schema (all three
 * sinks), a Redis write that fails (a string where the row's hash goes, in this test's own
 * key prefix), and a row the BigQuery emulator rejects (a year-0 commit_ts, which
 * PostgreSQL cannot produce, so this one event is written to the changes topic by the test).
 */
describe('replay-dlq: inspect, filter, re-deliver', { timeout: 300_000 }, () => {
  const table = unique('rd');
  const t = `public.${table}`;
  const dir = tempDir('streamctl-replay-');
  const schemaFile = path.join(dir, 'row.schema.json');
  const configFile = path.join(dir, 'config.yaml');
  const receiver = new HttpReceiver({ hmacKey: RECEIVER_KEY });
  let receiverUrl = '';
  let db: pg.Client;
  let kafka: Kafka;
  let admin: Admin;
  let redis: Redis;
  let config: Config;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  let env: Record<string, string>;
  const ids: Record<string, string> = {};
  /** DLQ records just before the first --execute. */
  let recordsBefore = 0;
  const rowKey = (id: number) => `${pipeline.tag}:row:${t}:{"id":${id}}`;
  const cli = (args: string[]) => runCli(['--json', 'replay-dlq', ...args], env, 120_000);
  const inspect = async (args: string[] = []) => {
    const r = await cli(args);
    return { code: r.code, stderr: r.stderr, ...(JSON.parse(r.stdout) as { summary: Summary; letters: View[] }) };
  };
  const receiverKeys = async () => (await (await fetch(`${receiverUrl}/_keys`)).json()) as { keys: Record<string, number> };
  const dlqRecords = () => readTopic(kafka, `${pipeline.tag}.dlq`, { enough: () => true, quietMs: 1500, timeoutMs: 30_000 });

  before(async () => {
    receiverUrl = `http://127.0.0.1:${(await receiver.listen(0)).port}`;
    // Rows whose v is 'bad' are invalid for this table: every sink dead-letters them.
    writeFileSync(schemaFile, JSON.stringify({ type: 'object', properties: { v: { not: { const: 'bad' } } } }));
    writeFileSync(configFile, `validation:\n  tables:\n    ${t}: ${schemaFile}\nenrich:\n  maskKey: "mask-key-for-the-test-0123456789"\n  tables:\n    ${t}:\n      mask: [secret]\n`);
    pipeline = isolatedPipeline([t], `${receiverUrl}/events`, {
      STREAMCTL_CONFIG: configFile,
      STREAMCTL_SINKS_REDIS_RETRY_RETRIES: '1',
      STREAMCTL_SINKS_REDIS_RETRY_INITIAL_DELAY_MS: '50',
      STREAMCTL_SINKS_REDIS_RETRY_MAX_DELAY_MS: '100',
      STREAMCTL_SINKS_REDIS_BREAKER_CONSECUTIVE_FAILURES: '50',
      STREAMCTL_SINKS_HTTP_RETRY_RETRIES: '1',
      STREAMCTL_SINKS_HTTP_RETRY_INITIAL_DELAY_MS: '50',
      STREAMCTL_SINKS_HTTP_RETRY_MAX_DELAY_MS: '100',
      STREAMCTL_SINKS_BIGQUERY_RETRY_RETRIES: '1',
      STREAMCTL_SINKS_BIGQUERY_RETRY_INITIAL_DELAY_MS: '50',
      STREAMCTL_SINKS_BIGQUERY_RETRY_MAX_DELAY_MS: '100',
    });
    env = pipeline.env;
    config = loadConfig({ env, file: configFile });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text, secret text)`);
    kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
    admin = kafka.admin();
    await admin.connect();
    redis = new Redis({ host: config.sinks.redis.host, port: config.sinks.redis.port, lazyConnect: true });
    await redis.connect();
    // Row 3's Redis write fails: its hash key holds a string (WRONGTYPE), in this test's prefix only.
    await redis.set(rowKey(3), 'not a hash');

    const stream = startStream(env);
    try {
      await waitFor('the stream to start', async () => stream.log.text.includes('capture starting') && (stream.log.text.match(/sink delivering/g) ?? []).length === 3, 90_000);
      const letters = async (n: number) => waitFor(`${n} dead letters`, async () => (await dlqRecords()).length >= n, 90_000);
      await fetch(`${receiverUrl}/_control`, { method: 'POST', body: JSON.stringify({ next: ['4xx'] }) });
      await db.query(`INSERT INTO ${table} VALUES (1, 'one', 's3cret-one')`);
      await letters(1);
      await db.query(`INSERT INTO ${table} VALUES (2, 'bad', 's3cret-two')`);
      await db.query(`INSERT INTO ${table} VALUES (4, 'bad', 's3cret-four')`);
      await letters(7);
      // Row 4 becomes valid: every sink gets the newer version; its letters are superseded in Redis and BigQuery.
      await db.query(`UPDATE ${table} SET v = 'good' WHERE id = 4`);
      await waitFor('row 4 in Redis', async () => (await readRow(redis, `${pipeline.tag}:`, t, { id: 4 }))?.['v'] === 'good', 60_000);
      await db.query(`INSERT INTO ${table} VALUES (3, 'three', 's3cret-three')`);
      await letters(8);
      // A row the BigQuery emulator rejects (TIMESTAMP holds years 1-9999): Redis and HTTP take it.
      const producer = kafka.producer();
      await producer.connect();
      const lsn = '0/10';
      const event = {
        id: changeEventId(lsn, 0),
        version: 1,
        op: 'insert',
        schema: 'public',
        table,
        key: { id: 9 },
        before: null,
        after: { id: 9, v: 'nine', secret: 'nine' },
        lsn,
        position: 0,
        xid: 1,
        commit_ts: '0000-01-01T00:00:00Z',
        source: { pipeline: pipeline.tag, db: 'streamctl', kind: 'cdc' },
      };
      await producer.send({ topic: `${pipeline.tag}.changes`, messages: [{ key: recordKey('public', table, { id: 9 }), value: JSON.stringify(event) }] });
      await producer.disconnect();
      await letters(9);
    } finally {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
    for (const r of await dlqRecords()) {
      const e = JSON.parse(r.value) as { id: string; key: { id: number } };
      ids[`${e.key.id}`] = e.id;
    }
  });

  after(async () => {
    await dropPipeline(db, admin, pipeline.tag);
    await admin.deleteTopics({ topics: [`${pipeline.tag}.dlq-resolved`] }).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    const keys = await redis.keys(`${pipeline.tag}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    const bq = makeBigQuery(config.sinks.bigquery);
    await bq.dataset(pipeline.tag).delete({ force: true }).catch(() => {});
    await admin.disconnect();
    await receiver.close();
  });

  it('lists the letters real failures made, with their headers, by sink, error class and table', async () => {
    const r = await inspect();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.summary.letters, 9);
    assert.equal(r.summary.states['open'], 9);
    assert.deepEqual(r.summary.open_by, {
      http: { http_422: { [t]: 1 }, invalid_row: { [t]: 2 } },
      redis: { invalid_row: { [t]: 2 }, redis_error: { [t]: 1 } },
      bigquery: { invalid_row: { [t]: 3 } },
    });
    const redisFailure = r.letters.find((l) => l.error_class === 'redis_error');
    assert.equal(redisFailure?.key, '{"id":3}');
    assert.equal(redisFailure?.attempts, 2, 'one try and one retry');
    assert.equal(redisFailure?.source.topic, `${pipeline.tag}.changes`);
    assert.match(redisFailure?.source.offset ?? '', /^\d+$/);
    const rows = (l: View[]) => l.map((x) => `${x.sink}:${x.key}`).sort();
    assert.deepEqual(rows((await inspect(['--key', '{"id":2}'])).letters), ['bigquery:{"id":2}', 'http:{"id":2}', 'redis:{"id":2}']);
    assert.deepEqual(rows((await inspect(['--sink', 'bigquery', '--error-class', 'invalid_row', '--since', '1h'])).letters), ['bigquery:{"id":2}', 'bigquery:{"id":4}', 'bigquery:{"id":9}']);
    assert.deepEqual(rows((await inspect(['--event-id', ids['1']!])).letters), ['http:{"id":1}']);
    const offset = redisFailure!.source.offset;
    assert.deepEqual(rows((await inspect(['--source-offset', `${pipeline.tag}.changes:${redisFailure!.source.partition}:${offset}-${offset}`])).letters).filter((x) => x.startsWith('redis')), ['redis:{"id":3}']);
    assert.equal((await inspect(['--until', '2000-01-01'])).code, 3, 'an empty match exits 3');
  });

  it('never shows a masked column, and says what is wrong with bad flags (exit 2)', async () => {
    const shown = await cli(['--event-id', ids['1']!, '--show-event']);
    assert.equal(shown.code, 0, shown.stderr);
    const letter = (JSON.parse(shown.stdout) as { letters: View[] }).letters[0]!;
    assert.match(String(letter.event?.after?.['secret']), /^hmac-sha256:/);
    assert.ok(!shown.stdout.includes('s3cret'), 'the masked value leaked');
    const plain = await runCli(['replay-dlq', '--show-event', '--key', '{"id":2}'], env, 120_000);
    assert.match(plain.stdout, /^letter state=open sink=(redis|http|bigquery) table=public\.\S+ key=\{"id":2\} op=insert error_class=invalid_row attempts=1 /m);
    assert.ok(!plain.stdout.includes('s3cret'));
    const bad = await cli(['--since', 'yesterday-ish', '--table', 'public.nope', '--key', 'id=3', '--source-offset', 'x']);
    assert.equal(bad.code, 2);
    const problems = (JSON.parse(bad.stdout) as { error: { problems: string[] } }).error.problems;
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.equal((await cli(['--sink', 'kafka'])).code, 2);
  });

  it('--execute after the fix: each letter in its sink, superseded ones change nothing, a failing one goes back with attempts+1', async () => {
    writeFileSync(schemaFile, JSON.stringify({ type: 'object' }));
    await redis.del(rowKey(3));
    // The DLQ is at least once: the stream may have written a letter twice.
    recordsBefore = (await dlqRecords()).length;
    const r = await cli(['--execute']);
    const run = JSON.parse(r.stdout) as Run;
    assert.equal(r.code, 3, `exit 3 while a letter fails again\n${r.stderr}`);
    assert.deepEqual(run.counts, { replayed: 6, superseded: 2, requeued: 1, held_back: 0, oversize: 0 });
    assert.deepEqual(run.bySink['redis'], { replayed: 2, superseded: 1, requeued: 0 });
    assert.deepEqual(run.bySink['bigquery'], { replayed: 1, superseded: 1, requeued: 1 });
    // In each sink: Redis rows 2 and 3 arrived; row 4 keeps its newer value.
    assert.equal((await readRow(redis, `${pipeline.tag}:`, t, { id: 2 }))?.['v'], 'bad');
    assert.equal((await readRow(redis, `${pipeline.tag}:`, t, { id: 3 }))?.['v'], 'three');
    assert.equal((await readRow(redis, `${pipeline.tag}:`, t, { id: 4 }))?.['v'], 'good');
    const bq = makeBigQuery(config.sinks.bigquery);
    const [latest] = await bq.query({ query: `SELECT row_key, after FROM \`${pipeline.tag}.${config.sinks.bigquery.viewLatest}\` WHERE source_table = '${table}' ORDER BY row_key` });
    const byKey = Object.fromEntries((latest as Array<{ row_key: string; after: string }>).map((x) => [x.row_key, (JSON.parse(x.after) as { v: string }).v]));
    assert.equal(byKey['{"id":2}'], 'bad');
    assert.equal(byKey['{"id":4}'], 'good', 'a superseded letter overwrote the newer row');
    const keys = (await receiverKeys()).keys;
    assert.equal(keys[ids['1']!], 1);
    assert.equal(keys[ids['2']!], 1);
    // The emulator still rejects row 9: back in the DLQ with attempts + 1 and the run's id.
    const again = (await dlqRecords()).filter((x) => (JSON.parse(x.value) as { id: string }).id === ids['9']);
    assert.equal(again.length, 2);
    const after = await inspect(['--all', '--event-id', ids['9']!]);
    const failing = after.letters.find((l) => l.state === 'failing');
    assert.equal(failing?.attempts, 2);
    assert.equal(failing?.replay_run, run.run);
    const open = await inspect();
    // Row 9 shows twice: its closed copy (requeued) and the new open one (failing).
    assert.deepEqual(open.summary.states, { open: 0, failing: 1, replayed: 6, superseded: 2, requeued: 1 });
    const status = await runCli(['--json', 'status'], env, 60_000);
    const delivery = (JSON.parse(status.stdout) as { capture: { delivery: { dlq_depth: number; dlq_open: Record<string, number>; dlq_records: number } } }).capture.delivery;
    assert.equal(delivery.dlq_depth, 1, 'status counts open letters only');
    assert.deepEqual(delivery.dlq_open, { bigquery: 1 });
    // Offsets, so the replay's transaction marker counts too: more than before, whatever is open.
    assert.ok(delivery.dlq_records > recordsBefore, `${delivery.dlq_records} records`);
  });

  it('a second --execute re-delivers nothing that was resolved; --max-attempts holds back a letter that keeps failing', async () => {
    const before = await receiverKeys();
    const r = await cli(['--execute', '--max-attempts', '2']);
    const run = JSON.parse(r.stdout) as Run;
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual(run.counts, { replayed: 0, superseded: 0, requeued: 0, held_back: 1, oversize: 0 });
    assert.deepEqual(await receiverKeys(), before);
    assert.equal((await dlqRecords()).length, recordsBefore + 1);
  });

  it('SIGINT stops after the write in flight, prints how far it got and exits 130', async () => {
    // One open letter (row 9) and a rate that makes the run wait 20 s before writing it.
    const child = spawn(process.execPath, [BIN, '--json', 'replay-dlq', '--execute', '--rate', '0.05'], { env: { PATH: process.env['PATH'], ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor('the run to start', async () => stderr.includes('"replay run"'), 60_000);
    await new Promise((r) => setTimeout(r, 3000));
    child.kill('SIGINT');
    const code = await exited(child);
    assert.equal(code, 130, stderr);
    const run = JSON.parse(stdout) as Run & { interrupted: boolean };
    assert.equal(run.interrupted, true);
    assert.equal(run.complete, false);
    assert.deepEqual(run.counts, { replayed: 0, superseded: 0, requeued: 0, held_back: 0, oversize: 0 });
  });

  it('counts dlq_replayed_total{sink,outcome}; a letter that keeps failing gains attempts each time', async () => {
    const metrics = new PipelineMetrics();
    const summary = await new ReplayRun(kafkaClient(config.kafka, silentLogger), loadConfig({ env, file: configFile }), silentLogger, metrics).execute({ filter: { sinks: ['bigquery'] }, maxAttempts: 10, batchSize: 100 });
    assert.deepEqual(summary.counts, { replayed: 0, superseded: 0, requeued: 1, held_back: 0, oversize: 0 });
    const text = await metrics.registry.metrics();
    assert.match(text, /^dlq_replayed_total\{sink="bigquery",outcome="requeued"\} 1$/m);
    const failing = (await inspect(['--event-id', ids['9']!])).letters.find((l) => l.state === 'failing');
    assert.equal(failing?.attempts, 3);
  });

  it('--to another sink resolves the letter there; nothing is left open', async () => {
    const r = await cli(['--execute', '--event-id', ids['9']!, '--to', 'redis']);
    assert.equal(r.code, 0, r.stderr);
    const run = JSON.parse(r.stdout) as Run;
    // Redis took row 9 from the stream already: its version is there, so nothing is written.
    assert.deepEqual(run.bySink, { redis: { replayed: 1, superseded: 0, requeued: 0 } });
    const open = await inspect();
    assert.equal(open.summary.states['open']! + open.summary.states['failing']!, 0);
  });
});
