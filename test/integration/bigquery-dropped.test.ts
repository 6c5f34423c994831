import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BigQuery } from '@google-cloud/bigquery';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import type { BigQuerySinkConfig } from '../../src/core/config/types.js';
import type { SinkRecord } from '../../src/core/sinks/contract.js';
import type { Logger } from '../../src/core/logger.js';
import { onceMoreOnReset } from '../../src/core/sinks/bigquery/errors.js';
import { BigQuerySink } from '../../src/core/sinks/bigquery/sink.js';
import { change } from '../helpers/events.js';
import { stackConfig, unique } from '../helpers/stack.js';
import { waitFor } from '../helpers/pipeline.js';

/** Keeps every line, so the test can read what the sink said about the history lost. */
function recordingLogger(lines: string[]): Logger {
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), child: () => logger };
  return logger;
}

/** The table or a view dropped behind the pipeline's back, on the emulator, in a dataset of its own. */
describe('BigQuery table or view dropped behind the pipeline', () => {
  let config: BigQuerySinkConfig;
  let bq: BigQuery;
  let sink: BigQuerySink;
  const lines: string[] = [];
  const records = (ids: number[]): SinkRecord[] =>
    ids.map((id, i) => ({ event: change('insert', `0/${1000 + id}`, 0, { id }, { id, name: `r${id}` }), topic: 'x.changes', partition: 0, offset: String(i) }));
  const query = async <T>(sql: string): Promise<T[]> => (await onceMoreOnReset(() => bq.query({ query: sql })))[0] as T[];
  const ref = (name: string) => `\`${config.projectId}.${config.dataset}.${name}\``;
  const exists = async (name: string) => (await onceMoreOnReset(() => bq.dataset(config.dataset).table(name).exists()))[0];

  before(async () => {
    config = { ...stackConfig().sinks.bigquery, dataset: unique('bqdrop'), table: 'changes', viewOnce: 'changes_once', viewLatest: 'latest' };
    bq = makeBigQuery(config, { autoRetry: false });
    sink = new BigQuerySink(config, recordingLogger(lines), 'test', 500);
    await sink.start();
  });
  after(async () => {
    await sink.stop();
    await onceMoreOnReset(() => bq.dataset(config.dataset).delete({ force: true }));
  });

  it('recreates a dropped table on the next write, says the history is lost, and the write lands', async () => {
    assert.deepEqual(await sink.write(records([1, 2])), [{ ok: true }, { ok: true }]);
    await onceMoreOnReset(() => bq.dataset(config.dataset).table(config.table).delete());
    assert.deepEqual(await sink.write(records([3])), [{ ok: true }]);
    assert.ok(await exists(config.table));
    const rows = await query<{ row_key: string }>(`SELECT row_key FROM ${ref(config.table)}`);
    assert.equal(rows.length, 1, 'the recreated table holds only what came after the drop');
    assert.ok(lines.some((l) => /^error table .*\.changes was dropped: recreated empty/.test(l) && /every event written to it before now/.test(l)), lines.join('\n'));
    const latest = await query<{ row_key: string }>(`SELECT row_key FROM ${ref(config.viewLatest)}`);
    assert.equal(latest.length, 1);
  });

  it('recreates a dropped view on its periodic check, saying no data was lost', async () => {
    await onceMoreOnReset(() => bq.dataset(config.dataset).table(config.viewLatest).delete());
    await waitFor('the view back', () => exists(config.viewLatest), 30_000);
    assert.ok(lines.some((l) => /^warn view .*\.latest was dropped: recreated/.test(l) && /a view holds no data/.test(l)), lines.join('\n'));
    const latest = await query<{ row_key: string }>(`SELECT row_key FROM ${ref(config.viewLatest)}`);
    assert.equal(latest.length, 1);
  });
});
