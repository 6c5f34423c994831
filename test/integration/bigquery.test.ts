import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BigQuery, Dataset } from '@google-cloud/bigquery';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { stackConfig, unique } from '../helpers/stack.js';

describe('BigQuery emulator of the local stack, through @google-cloud/bigquery', () => {
  let bq: BigQuery;
  let dataset: Dataset;
  before(async () => {
    bq = makeBigQuery(stackConfig().sinks.bigquery);
    [dataset] = await bq.createDataset(unique('ds'));
  });
  after(() => dataset.delete({ force: true }).catch(() => {}));

  it('creates a table, streams rows with insertIds, reads them back, and a dedup view shows each event once', async () => {
    const [table] = await dataset.createTable('events', {
      schema: {
        fields: [
          { name: 'event_id', type: 'STRING', mode: 'REQUIRED' },
          { name: 'n', type: 'INT64' },
          { name: 'payload', type: 'STRING' },
        ],
      },
    });
    const rows = [1, 2, 3].map((n) => ({ insertId: `e${n}`, json: { event_id: `e${n}`, n, payload: `{"n":${n}}` } }));
    await table.insert(rows, { raw: true });
    // A re-delivery after a crash: the same event again, under a new insertId, as a
    // streaming insert retried outside the dedup window would land.
    await table.insert([{ insertId: 'e2-again', json: { event_id: 'e2', n: 2, payload: '{"n":2}' } }], { raw: true });

    const [all] = await bq.query({ query: `SELECT event_id, n FROM \`${dataset.id}.events\` ORDER BY n, event_id` });
    assert.deepEqual(
      all.map((r: { event_id: string; n: number }) => [r.event_id, Number(r.n)]),
      [
        ['e1', 1],
        ['e2', 2],
        ['e2', 2],
        ['e3', 3],
      ],
    );

    await dataset.createTable('events_once', {
      view: {
        query: `SELECT * EXCEPT(rn) FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY event_id) AS rn FROM \`${dataset.id}.events\`) WHERE rn = 1`,
        useLegacySql: false,
      },
    });
    const [once] = await bq.query({ query: `SELECT event_id FROM \`${dataset.id}.events_once\` ORDER BY event_id` });
    assert.deepEqual(
      once.map((r: { event_id: string }) => r.event_id),
      ['e1', 'e2', 'e3'],
    );
  });
});
