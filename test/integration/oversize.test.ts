import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { derivedNames, loadConfig } from '../../src/core/config/index.js';
import type { ChangeEvent } from '../../src/core/event/index.js';
import { readRow } from '../../src/core/sinks/redis/sink.js';
import { readTopic } from '../helpers/kafka-read.js';
import { openEndToEnd, type EndToEnd } from '../helpers/e2e.js';
import { waitFor } from '../helpers/pipeline.js';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';

const MiB = 1024 * 1024;

/**
 * Row size on the real stack, with kafka.maxRecordBytes at 3 MiB (the broker keeps its
 * 1 MiB message.max.bytes: the topics' own max.message.bytes does the work): a 2 MiB row
 * flows to every sink; a 4 MiB row becomes an oversize marker in each sink's DLQ and does
 * not hold back the row after it; a keyed backfill under a raised limit brings it in.
 */
describe('oversized rows: within the limit they flow, beyond it a marker, then a keyed backfill', { timeout: 300_000 }, () => {
  const table = unique('ovs');
  let e2e: EndToEnd;
  let pipeline: EndToEnd['pipeline'];
  let db: pg.Client;
  const doc = (n: number, c: string) => c.repeat(n);

  before(async () => {
    e2e = await openEndToEnd([`public.${table}`], { STREAMCTL_KAFKA_MAX_RECORD_BYTES: String(3 * MiB) }, { maxBodyBytes: 32 * MiB });
    ({ pipeline, db } = e2e);
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, doc text)`);
    await e2e.startStream();
  });

  after(() => e2e.close([table]));

  const row = (id: number) => readRow(e2e.redis, `${pipeline.tag}:`, `public.${table}`, { id });
  const latestDocLengths = async (): Promise<Map<number, number>> => {
    const bq = makeBigQuery(loadConfig({ env: pipeline.env }).sinks.bigquery);
    const [rows] = await bq.query({ query: `SELECT row_key, LENGTH(after) AS n FROM \`${pipeline.tag}.latest\` WHERE source_table = '${table}'` });
    return new Map((rows as Array<{ row_key: string; n: number }>).map((r) => [(JSON.parse(r.row_key) as { id: number }).id, Number(r.n)]));
  };

  it('delivers a 2 MiB row; a 4 MiB row is an oversize marker in every DLQ and the row after it still flows', async () => {
    await db.query(`INSERT INTO ${table} VALUES (1, $1)`, [doc(2 * MiB, 'a')]);
    await db.query(`INSERT INTO ${table} VALUES (2, $1)`, [doc(4 * MiB, 'b')]);
    await db.query(`INSERT INTO ${table} VALUES (3, 'small')`);
    await waitFor('rows 1 and 3 in Redis', async () => (await row(1))?.['doc'] === doc(2 * MiB, 'a') && (await row(3))?.['doc'] === 'small', 120_000);
    assert.equal(await row(2), null, 'the oversized row is not applied');
    await waitFor('rows 1 and 3 in BigQuery latest', async () => {
      const got = await latestDocLengths();
      return got.has(1) && got.has(3) && !got.has(2) && got.get(1)! > 2 * MiB;
    }, 120_000);

    const names = derivedNames(loadConfig({ env: pipeline.env }));
    const dead = await readTopic(e2e.kafka, names.dlqTopic, { enough: (rs) => rs.length >= 3, quietMs: 1500, timeoutMs: 60_000 });
    const markers = dead.map((r) => JSON.parse(r.value) as ChangeEvent).filter((e) => e.op === 'oversize');
    assert.equal(markers.length, 3, 'one marker in the DLQ of each sink (redis, bigquery, http)');
    for (const m of markers) {
      assert.deepEqual(m.key, { id: 2 });
      assert.equal(m.oversize?.op, 'insert');
      assert.equal(m.oversize?.limit_bytes, 3 * MiB);
      assert.ok((m.oversize?.columns['doc'] ?? 0) > 4 * MiB);
    }
    assert.match(e2e.stream!.log.text, /row over kafka\.maxRecordBytes: wrote an oversize marker/);
  });

  const replay = async (args: string[]) => runCli(['replay-dlq', '--json', ...args], pipeline.env, 120_000);
  type ReplayJson = { ok: boolean; counts?: Record<string, number>; summary?: { states: Record<string, number> }; letters?: Array<{ op: string; state: string; attempts: number }> };

  it('replay-dlq leaves the markers open without sending them (they would only fail again) and says how to recover', async () => {
    const r = await replay(['--execute']);
    assert.equal(r.code, 3, r.stderr);
    const json = JSON.parse(r.stdout) as ReplayJson;
    assert.equal(json.counts?.['requeued'], 0, 'a marker sent to a sink is only dead-lettered again');
    assert.equal(json.counts?.['oversize'], 3, 'the three markers are counted as left open');
    const text = await runCli(['replay-dlq', '--execute'], pipeline.env, 120_000);
    assert.match(text.stdout, /3 oversize markers left open/);
    assert.match(text.stdout, /backfill/);
    const inspect = JSON.parse((await replay([])).stdout) as ReplayJson;
    assert.deepEqual(inspect.letters?.map((l) => [l.op, l.state, l.attempts]), [['oversize', 'open', 1], ['oversize', 'open', 1], ['oversize', 'open', 1]]);
  });

  it('brings the row in with a keyed backfill once the limit is raised (the topics are raised too, no broker restart)', async () => {
    const raised = { ...pipeline.env, STREAMCTL_KAFKA_MAX_RECORD_BYTES: String(8 * MiB) };
    const result = await runCli(['backfill', '--table', `public.${table}`, '--where', 'id = 2'], raised, 120_000);
    assert.equal(result.code, 0, result.stderr);
    await waitFor('row 2 in Redis', async () => (await row(2))?.['doc'] === doc(4 * MiB, 'b'), 120_000);
    await waitFor('row 2 in BigQuery latest', async () => ((await latestDocLengths()).get(2) ?? 0) > 4 * MiB, 120_000);
  });

  it('after that backfill, replay-dlq closes every marker as superseded, HTTP included (it reads the same changes topic)', async () => {
    const r = await replay(['--execute']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as ReplayJson;
    assert.equal(json.counts?.['superseded'], 3);
    const inspect = JSON.parse((await replay([])).stdout) as ReplayJson;
    assert.equal(inspect.summary?.states['open'], 0);
    assert.equal(inspect.summary?.states['failing'], 0);
  });
});
