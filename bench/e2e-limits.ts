/**
 * The limits bench:e2e's sinks are judged against, measured in the same run by a direct
 * client loop with nothing of streamctl in between (as bench:capture runs
 * ProducerPerformance beside capture): how fast the BigQuery emulator takes streaming
 * inserts of rows shaped like the sink's, in batches of the sink's size, with 1 and with
 * several requests in flight. A sink cannot deliver faster than its server takes rows.
 *
 * Run on its own (npm run bench:bq-limits), it sweeps batch rows x inserts in flight and
 * prints a table: rows/s, and CPU seconds per 100k rows of the emulator's process (from
 * /proc, its pid from .stack/bq/bq.pid) and of this client, with the load average. The
 * emulator is a single Python process: its CPU per row is the ceiling, whatever the sink
 * does, since it gets at most one core of this machine.
 *
 *   node dist/bench/e2e-limits.js [--rows N] [--batches 100,500,...] [--in-flight 1,2,...] [--skip-invalid 0|1] [--json]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { makeBigQuery } from '../src/core/clients/bigquery.js';
import { loadConfig } from '../src/core/config/index.js';
import { ensureDataset, ensureTable } from '../src/core/sinks/bigquery/ddl.js';
import { eventToRow } from '../src/core/sinks/bigquery/rows.js';
import type { ChangeEvent } from '../src/core/event/envelope.js';
import { silentLogger } from '../src/core/logger.js';
import { cpuSeconds } from '../src/core/stress/machine.js';
import { ROOT, load } from './machine.js';

export interface InsertLimit {
  batch_rows: number;
  in_flight: number;
  rows_per_s: number;
  /** CPU seconds the emulator's process used per 100k rows taken (null: its pid unknown). */
  emulator_cpu_s_per_100k?: number | null;
  /** The emulator's CPU over the cell, in % of one core. */
  emulator_cpu_percent?: number | null;
  /** This client's CPU per 100k rows (row building, JSON, HTTP). */
  client_cpu_s_per_100k?: number;
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

/** The local stack's emulator process, if this machine runs it (scripts/stack.d/bigquery.sh writes the pid). */
export function emulatorPid(): number | null {
  try {
    const pid = Number(readFileSync(path.join(ROOT, '.stack/bq/bq.pid'), 'utf8').trim());
    return Number.isInteger(pid) && cpuSeconds(pid) !== null ? pid : null;
  } catch {
    return null;
  }
}

/** This process's CPU seconds (user + system). */
export const ownCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * Rows per second the emulator took: `rows` rows in batches of `batchRows`, `inFlight`
 * requests at once, each count of in-flight requests into a fresh table of its own (dropped
 * after), so a table's size does not favour the first cell. Without skipInvalidRows by
 * default, as the sink sends them (src/core/sinks/bigquery/sink.ts).
 */
export async function bigQueryInsertLimit(rows: number, batchRows: number, inFlight: number[], skipInvalidRows = false): Promise<InsertLimit[]> {
  const config = loadConfig({ env: process.env }).sinks.bigquery;
  const bq = makeBigQuery(config, { autoRetry: false });
  const dataset = bq.dataset(config.dataset, { location: config.location });
  await ensureDataset(dataset, config, silentLogger);
  const pid = emulatorPid();
  const out: InsertLimit[] = [];
  for (const n of inFlight) {
    const table = `bench_limit_${process.pid}_${Date.now()}_${batchRows}_${n}`;
    await ensureTable(dataset, { ...config, table }, silentLogger);
    const t = dataset.table(table);
    try {
      // At least 4 rounds of n requests, so a cell is not one burst.
      const batches = Math.max(Math.ceil(rows / batchRows), 4 * n);
      let next = 0;
      const emu0 = pid === null ? null : cpuSeconds(pid);
      const own0 = ownCpuSeconds();
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
              await t.insert(batch, { raw: true, skipInvalidRows, partialRetries: 0 });
              break;
            } catch (err) {
              if (attempt >= 5) throw err;
              await new Promise((r) => setTimeout(r, 200 * attempt));
            }
          }
        }
      };
      await Promise.all(Array.from({ length: n }, worker));
      const seconds = (performance.now() - began) / 1000;
      const taken = batches * batchRows;
      const emu1 = pid === null ? null : cpuSeconds(pid);
      const emuCpu = emu0 === null || emu1 === null ? null : emu1 - emu0;
      out.push({
        batch_rows: batchRows,
        in_flight: n,
        rows_per_s: Math.round(taken / seconds),
        emulator_cpu_s_per_100k: emuCpu === null ? null : round2((emuCpu * 100_000) / taken),
        emulator_cpu_percent: emuCpu === null ? null : Math.round((emuCpu / seconds) * 100),
        client_cpu_s_per_100k: round2(((ownCpuSeconds() - own0) * 100_000) / taken),
      });
    } finally {
      await t.delete().catch(() => {});
    }
  }
  return out;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

const list = (args: string[], flag: string, fallback: number[]) => {
  const i = args.indexOf(flag);
  return i < 0 ? fallback : args[i + 1]!.split(',').map(Number);
};

if (process.argv[1]?.endsWith('e2e-limits.js')) {
  const args = process.argv.slice(2);
  const rows = list(args, '--rows', [20_000])[0]!;
  const batchSizes = list(args, '--batches', [100, 500, 1000, 2000, 5000]);
  const inFlight = list(args, '--in-flight', [1, 2, 3, 4]);
  const json = args.includes('--json');
  // --skip-invalid 1: requests as the sink sent them before (skipInvalidRows), which makes the
  // emulator convert every row on its own before the batch: 3-4x its CPU per row.
  const skipInvalidRows = list(args, '--skip-invalid', [0])[0] !== 0;
  process.stdout.write(`BigQuery emulator insert sweep: >= ${rows} rows per cell, skipInvalidRows ${skipInvalidRows}, load ${load()} at start\n`);
  if (!json) process.stdout.write('batch_rows in_flight  rows/s  emulator_cpu_s/100k  emulator_cpu%  client_cpu_s/100k\n');
  for (const batch of batchSizes) {
    for (const l of await bigQueryInsertLimit(rows, batch, inFlight, skipInvalidRows)) {
      process.stdout.write(json ? `${JSON.stringify(l)}\n` : `${String(l.batch_rows).padStart(10)} ${String(l.in_flight).padStart(9)} ${String(l.rows_per_s).padStart(7)} ${String(l.emulator_cpu_s_per_100k ?? '-').padStart(20)} ${String(l.emulator_cpu_percent ?? '-').padStart(14)} ${String(l.client_cpu_s_per_100k).padStart(18)}\n`);
    }
  }
  process.stdout.write(`load ${load()} at end\n`);
}
