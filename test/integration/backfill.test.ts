import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { type Admin, type Kafka, kafkaClient } from '../../src/core/clients/rdkafka.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { derivedNames, loadConfig, type Config } from '../../src/core/config/index.js';
import type { ChangeEvent } from '../../src/core/event/envelope.js';
import { recordKey } from '../../src/core/event/identity.js';
import { parseLsn } from '../../src/core/event/lsn.js';
import { validateEvent } from '../../src/core/event/validate.js';
import { silentLogger } from '../../src/core/logger.js';
import { decodeQueryRow, RAW_TEXT_TYPES as RAW, SESSION_OPTIONS, TypeRegistry } from '../../src/core/source/pg-types.js';
import { exited } from '../helpers/capturer.js';
import { readTopic, type ReadRecord } from '../helpers/kafka-read.js';
import { dropPipeline, isolatedPipeline, waitFor } from '../helpers/pipeline.js';
import { BIN, runCli } from '../helpers/run-cli.js';


describe('streamctl backfill', { timeout: 240_000 }, () => {
  const { tag, env } = isolatedPipeline([], 'http://127.0.0.1:9/unused');
  const config: Config = loadConfig({ env });
  const names = derivedNames(config);
  const typed = `${tag}_typed`;
  const big = `${tag}_big`;
  const paced = `${tag}_paced`;
  let db: pg.Client;
  let kafka: Kafka;
  let admin: Admin;

  before(async () => {
    db = makePgClient(config.postgres, { options: SESSION_OPTIONS, types: RAW });
    await db.connect();
    await db.query(`CREATE TABLE ${typed} (tenant text, id int8, amount numeric(12,3), tags text[], doc jsonb, data bytea, at timestamptz, PRIMARY KEY (tenant, id))`);
    await db.query(
      `INSERT INTO ${typed} SELECT CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END, g, g / 7.0, ARRAY['t' || g, NULL], jsonb_build_object('g', g, 'big', 12345678901234567890),
         decode(md5(g::text), 'hex'), timestamptz '2026-01-01 00:00:00.123456+00' + g * interval '1 second' FROM generate_series(1, 2500) g`,
    );
    await db.query(`CREATE TABLE ${big} (id int PRIMARY KEY, v text)`);
    await db.query(`INSERT INTO ${big} SELECT g, repeat('x', 100) FROM generate_series(1, 30000) g`);
    await db.query(`CREATE TABLE ${paced} (id int PRIMARY KEY)`);
    await db.query(`INSERT INTO ${paced} SELECT g FROM generate_series(1, 3000) g`);
    kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
    admin = kafka.admin();
    await admin.connect();
  });

  after(async () => {
    await dropPipeline(db, admin, tag);
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`streamctl-${tag}-`));
    await admin.deleteGroups(groups).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${typed}, ${big}, ${paced}`);
    await db.end();
    await admin.disconnect();
  });

  const eventsOf = (records: ReadRecord[], table: string) =>
    records.map((r) => ({ record: r, event: JSON.parse(r.value) as ChangeEvent })).filter((x) => x.event.table === table);

  it('loads every row as a read event: the capture JSON of the row, its key, a valid envelope, one Kafka transaction per chunk', async () => {
    const result = await runCli(['backfill', '--table', `public.${typed}`, '--chunk-size', '1000', '--json'], env, 120_000);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as { ok: boolean; run: string; state: string; rows: number; chunks: number; tables: Array<{ table: string; rows: number; done: boolean }> };
    assert.equal(summary.ok, true);
    assert.equal(summary.state, 'done');
    assert.equal(summary.rows, 2500);
    assert.equal(summary.chunks, 3);
    assert.deepEqual(summary.tables, [{ table: `public.${typed}`, rows: 2500, done: true }]);

    const records = await readTopic(kafkaClient(config.kafka, silentLogger), names.changesTopic, { enough: (rs) => eventsOf(rs, typed).length >= 2500, quietMs: 1500, timeoutMs: 60_000 });
    const events = eventsOf(records, typed);
    assert.equal(events.length, 2500);
    assert.equal(new Set(events.map((e) => e.event.id)).size, 2500, 'ids are unique');
    const pgRows = await db.query(`SELECT * FROM ${typed}`);
    const registry = new TypeRegistry((sql, params) => db.query(sql, params));
    await registry.resolveForFields(pgRows.fields);
    const want = new Map(pgRows.rows.map((row) => {
      const decoded = decodeQueryRow(pgRows.fields, row as Record<string, unknown>, registry);
      return [`${String(decoded['tenant'])}/${String(decoded['id'])}`, decoded];
    }));
    for (const { record, event } of events) {
      assert.equal(validateEvent(event).ok, true, `valid envelope: ${event.id}`);
      assert.equal(event.op, 'read');
      assert.equal(event.source.kind, 'backfill');
      assert.equal(event.source.run, summary.run);
      assert.match(event.id, new RegExp(`^r-${summary.run}-`));
      assert.match(event.lsn ?? '', /^[0-9A-F]+\/[0-9A-F]+$/);
      assert.deepEqual(Object.keys(event.key ?? {}).sort(), ['id', 'tenant']);
      assert.equal(record.key, recordKey('public', typed, event.key), 'the Kafka key capture would use for the row');
      assert.deepEqual(event.after, want.get(`${String(event.key?.['tenant'])}/${String(event.key?.['id'])}`));
    }
    const sample = events.find((e) => e.event.key?.['id'] === '7')!.event.after!;
    assert.equal(sample['id'], '7', 'int8 as a string');
    assert.equal(sample['at'], '2026-01-01T00:00:07.123456Z');
    assert.deepEqual(sample['tags'], ['t7', null]);
    assert.equal(sample['doc'], '{"g": 7, "big": 12345678901234567890}', 'jsonb kept as text, every digit');
    // Three chunks, three snapshots: in key order the reads carry three consistent points, each later than the last.
    const points = events
      .map((e) => e.event)
      .sort((a, b) => (String(a.key?.['tenant']) + String(a.key?.['id']).padStart(6, '0') < String(b.key?.['tenant']) + String(b.key?.['id']).padStart(6, '0') ? -1 : 1))
      .map((e) => parseLsn(e.lsn!));
    assert.equal(new Set(points).size, 3, 'one snapshot per chunk');
    assert.ok(points.every((p, i) => i === 0 || p >= points[i - 1]!), 'each chunk read in a later snapshot');
  });

  it('locks the table, shows progress in status, stops on SIGTERM after a chunk with the run id, and --resume finishes with every row once', async () => {
    const child = spawn(process.execPath, [BIN, 'backfill', '--table', `public.${big}`, '--rate', '2000', '--json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const run = await waitFor('the run to start', async () => /"run":"(bf-[^"]+)"/.exec(err)?.[1], 60_000);

    // A second backfill of the same table: refused at once, naming the run that holds it.
    const second = await runCli(['backfill', '--table', `public.${big}`], env, 60_000);
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`already being backfilled[\\s\\S]*public\\.${big}: held by streamctl backfill ${run}`));

    // status shows the running run's progress.
    const status = await waitFor('status to show the run with rows', async () => {
      const s = await runCli(['status', '--json'], env, 60_000);
      const report = JSON.parse(s.stdout) as { backfill: { runs: Array<{ run: string; state: string; rows_total: number; current: string }> } };
      const mine = report.backfill.runs.find((r) => r.run === run);
      return mine && mine.rows_total > 0 ? mine : undefined;
    });
    assert.equal(status.state, 'running');
    assert.equal(status.current, `public.${big}`);

    child.kill('SIGTERM');
    const code = await exited(child);
    assert.equal(code, 130, err);
    const stopped = JSON.parse(out) as { state: string; rows: number; run: string };
    assert.equal(stopped.state, 'stopped');
    assert.equal(stopped.run, run);
    assert.ok(stopped.rows > 0 && stopped.rows < 30000, `stopped part way (${stopped.rows})`);
    assert.equal(stopped.rows % 2000, 0, 'after whole chunks (a second of rows each under --rate)');

    const after = JSON.parse((await runCli(['status', '--json'], env, 60_000)).stdout) as { backfill: { runs: Array<{ run: string; state: string }> } };
    assert.equal(after.backfill.runs.find((r) => r.run === run)?.state, 'interrupted');
    const plain = await runCli(['status'], env, 60_000);
    assert.match(plain.stdout, new RegExp(`resume with: streamctl backfill --resume ${run}`));

    const resumed = await runCli(['backfill', '--resume', run, '--json'], env, 120_000);
    assert.equal(resumed.code, 0, resumed.stderr);
    const done = JSON.parse(resumed.stdout) as { state: string; resumed: boolean; rows: number; rowsTotal: number };
    assert.equal(done.state, 'done');
    assert.equal(done.resumed, true);
    assert.equal(done.rowsTotal, 30000);
    assert.equal(done.rows, 30000 - stopped.rows, 'the resumed run read only what was left');

    const records = await readTopic(kafkaClient(config.kafka, silentLogger), names.changesTopic, { enough: (rs) => eventsOf(rs, big).length >= 30000, quietMs: 1500, timeoutMs: 60_000 });
    const events = eventsOf(records, big);
    assert.equal(events.length, 30000, 'every row once, nothing twice');
    assert.equal(new Set(events.map((e) => String(e.event.key?.['id']))).size, 30000);

    const again = await runCli(['backfill', '--resume', run, '--json'], env, 60_000);
    assert.equal(again.code, 0, 'resuming a finished run is a no-op');
    assert.equal((JSON.parse(again.stdout) as { rows: number }).rows, 0);
  });

  it('--rate caps rows per second', async () => {
    const result = await runCli(['backfill', '--table', `public.${paced}`, '--rate', '1000', '--json'], env, 60_000);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as { rows: number; chunks: number; seconds: number };
    assert.equal(summary.rows, 3000);
    // 1,000-row chunks starting a second apart: the third starts 2 s after the first.
    assert.ok(summary.seconds >= 2, `took ${summary.seconds} s`);
    assert.ok(summary.chunks >= 3);
  });

  it('draws a progress bar on a terminal, and plain log lines with NO_COLOR', async () => {
    // `script` gives the command a pseudo-terminal, as an operator's shell would.
    const onTty = (extra: Record<string, string>) =>
      runCli(['-c', `script -qec '${process.execPath} ${BIN} backfill --table public.${paced} --chunk-size 500' /dev/null`], { ...env, TERM: 'xterm', ...extra }, 60_000, 'bash');
    const text = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '\n');
    const tty = await onTty({});
    assert.equal(tty.code, 0, tty.stdout + tty.stderr);
    assert.match(text(tty.stdout), new RegExp(`public\\.${paced} [█░]+ \\d+/~\\d+ rows \\| \\d+ rows/s \\| ETA`), 'a bar with rows, rows/s and ETA');
    assert.doesNotMatch(text(tty.stdout), /backfill: (progress|table done) /, 'no log lines under the bar');
    const plain = await onTty({ NO_COLOR: '1' });
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    assert.doesNotMatch(plain.stdout, /[█░]/, 'no bar');
    assert.match(plain.stdout, new RegExp(`INFO  backfill: table done table=public\\.${paced} rows=3000`));
  });

  it('usage and environment errors are specific, with documented exit codes', async () => {
    const none = await runCli(['backfill'], env);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--table schema\.table/);
    const missing = await runCli(['backfill', '--table', `public.${tag}_nope`, '--table', 'public.also_missing_zz'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, new RegExp(`public\\.${tag}_nope does not exist[\\s\\S]*public\\.also_missing_zz does not exist`));
    const unknown = await runCli(['backfill', '--resume', 'bf-nope'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no backfill run 'bf-nope'/);
    await db.query(`CREATE TABLE ${tag}_nokey (a int)`);
    try {
      const nokey = await runCli(['backfill', '--table', `public.${tag}_nokey`], env);
      assert.equal(nokey.code, 4);
      assert.match(nokey.stderr, /has no primary key/);
    } finally {
      await db.query(`DROP TABLE ${tag}_nokey`);
    }
  });
});
