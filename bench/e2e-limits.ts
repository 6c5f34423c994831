/**
 * The limits bench:e2e's sinks are judged against, measured in the same run by a direct
 * client loop with nothing of streamctl in between (as bench:capture runs
 * ProducerPerformance beside capture): how fast the BigQuery emulator takes streaming
 * inserts of rows shaped like the sink's, in batches of the sink's size, with 1 and with
 * several requests in flight. A sink cannot deliver faster than its server takes rows.
 *
 * Run on its own: node dist/bench/e2e-limits.js [ROWS]
 */
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { makeBigQuery } from '../src/core/clients/bigquery.js';
import { loadConfig } from '../src/core/config/index.js';
import { ensureDataset, ensureTable } from '../src/core/sinks/bigquery/ddl.js';
import { eventToRow } from '../src/core/sinks/bigquery/rows.js';
import type { ChangeEvent } from '../src/core/event/envelope.js';
import { silentLogger } from '../src/core/logger.js';

export interface InsertLimit {
  batch_rows: number;
  in_flight: number;
  rows_per_s: number;
}

/** An event like the mixed workload's (one small row), as the sink turns it into a row. */
function sampleEvent(i: number): ChangeEvent {
  return {
    id: randomUUID(), op: 'update', schema: 'public', table: 'bench_limit', key: { id: i },
    before: null, after: { id: i, n: i, payload: 'x'.repeat(120), updated_at: new Date().toISOString() },
    lsn: '0/16B3748', position: i, xid: 1000 + i, commit_ts: new Date().toISOString(),
    source: { pipeline: 'bench-limit' },
  } as unknown as ChangeEvent;
}

/**
 * Rows per second the emulator took: `rows` rows in batches of `batchRows`, `inFlight`
 * requests at once, into a table of its own (dropped after).
 */
export async function bigQueryInsertLimit(rows: number, batchRows: number, inFlight: number[]): Promise<InsertLimit[]> {
  const config = loadConfig({ env: process.env }).sinks.bigquery;
  const table = `bench_limit_${process.pid}_${Date.now()}`;
  const sinkConfig = { ...config, table };
  const bq = makeBigQuery(sinkConfig, { autoRetry: false });
  const dataset = bq.dataset(config.dataset, { location: config.location });
  await ensureDataset(dataset, sinkConfig, silentLogger);
  await ensureTable(dataset, sinkConfig, silentLogger);
  const t = dataset.table(table);
  const out: InsertLimit[] = [];
  try {
    for (const n of inFlight) {
      const batches = Math.ceil(rows / batchRows);
      let next = 0;
      const began = performance.now();
      const worker = async () => {
        while (next < batches) {
          const b = next++;
          const at = new Date();
          const batch = Array.from({ length: batchRows }, (_, j) => {
            const e = sampleEvent(b * batchRows + j);
            return { insertId: e.id, json: eventToRow(e, at) };
          });
          // The emulator sometimes answers 500 under load: that insert again, as the sink's retry would.
          for (let attempt = 1; ; attempt++) {
            try {
              await t.insert(batch, { raw: true, skipInvalidRows: true, partialRetries: 0 });
              break;
            } catch (err) {
              if (attempt >= 5) throw err;
              await new Promise((r) => setTimeout(r, 200 * attempt));
            }
          }
        }
      };
      await Promise.all(Array.from({ length: n }, worker));
      out.push({ batch_rows: batchRows, in_flight: n, rows_per_s: Math.round((batches * batchRows) / ((performance.now() - began) / 1000)) });
    }
  } finally {
    await t.delete().catch(() => {});
  }
  return out;
}

if (process.argv[1]?.endsWith('e2e-limits.js')) {
  const rows = Number(process.argv[2] ?? 20_000);
  for (const batch of [500, 2000]) {
    for (const l of await bigQueryInsertLimit(rows, batch, [1, 3, 8])) process.stdout.write(`${JSON.stringify(l)}\n`);
  }
}
