/**
 * The BigQuery sink's own cost, with no Kafka in between: N change events (shaped like the
 * mixed workload's: a small row, an update with before and after) written by BigQuerySink
 * into a fresh dataset of the emulator, in units of `delivery` size with the sink's units
 * in flight, as the delivery runner does for one partition. Prints rows/s, CPU seconds per
 * 100k rows of this process (the sink: row building, the client library, JSON, HTTP) and of
 * the emulator's process, and the CPU of turning events into rows alone.
 *
 *   npm run bench:bq-sink [-- --events 50000 --unit 500 --in-flight N]
 *
 * --cpu-prof via node flags: node --cpu-prof dist/bench/bq-sink.js
 */
import { performance } from 'node:perf_hooks';
import { makeBigQuery } from '../src/core/clients/bigquery.js';
import { loadConfig } from '../src/core/config/index.js';
import type { ChangeEvent } from '../src/core/event/envelope.js';
import { changeEventId } from '../src/core/event/identity.js';
import { silentLogger } from '../src/core/logger.js';
import type { SinkRecord } from '../src/core/sinks/contract.js';
import { eventToRow } from '../src/core/sinks/bigquery/rows.js';
import { BigQuerySink } from '../src/core/sinks/bigquery/sink.js';
import { cpuSeconds } from '../src/core/stress/machine.js';
import { emulatorPid, ownCpuSeconds } from './e2e-limits.js';
import { load } from './machine.js';

const args = process.argv.slice(2);
const arg = (flag: string, fallback: number) => {
  const i = args.indexOf(flag);
  return i < 0 ? fallback : Number(args[i + 1]);
};
const EVENTS = arg('--events', 50_000);

function event(i: number): ChangeEvent {
  const at = new Date(Date.UTC(2026, 11, 1, 12, 0, 0, i)).toISOString();
  return {
    id: changeEventId('16/B374D848', i),
    version: 1,
    op: 'update',
    schema: 'public',
    table: 'bench_mixed',
    key: { id: i % 10_000 },
    before: { id: i % 10_000, n: i - 1, payload: 'y'.repeat(100), updated_at: at },
    after: { id: i % 10_000, n: i, payload: 'x'.repeat(100), updated_at: at },
    lsn: '16/B374D848',
    position: i,
    xid: 9000 + Math.floor(i / 50),
    commit_ts: at,
    source: { pipeline: 'bench-bq-sink', db: 'bench', kind: 'cdc', slot: 'bench' },
  };
}

const per100k = (cpu: number, n: number) => Math.round(((cpu * 100_000) / n) * 100) / 100;

const base = loadConfig({ env: process.env });
const config = { ...base.sinks.bigquery, dataset: `bench_bq_sink_${Date.now().toString(36)}`, table: 'changes' };
const sink = new BigQuerySink(config, silentLogger, 'bench-bq-sink');
// As the runner cuts a partition's records for a sink without `units` of its own (delivery/runner.ts).
const unitSize = arg('--unit', base.delivery.maxBatchEvents);
const inFlight = arg('--in-flight', 1);

const records: SinkRecord[] = Array.from({ length: EVENTS }, (_, i) => ({ event: event(i), topic: 'bench', partition: 0, offset: String(i) }));

// Rows alone: what eventToRow costs (canonical JSON of key, before and after).
let c0 = ownCpuSeconds();
const at = new Date();
for (const r of records) eventToRow(r.event, at);
const rowsCpu = per100k(ownCpuSeconds() - c0, EVENTS);

await sink.start();
try {
  const emu = emulatorPid();
  const emu0 = emu === null ? null : cpuSeconds(emu);
  c0 = ownCpuSeconds();
  const began = performance.now();
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < records.length) {
      const from = next;
      next += unitSize;
      const results = await sink.write(records.slice(from, from + unitSize));
      failed += results.filter((r) => !r.ok).length;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - began) / 1000;
  const emu1 = emu === null ? null : cpuSeconds(emu);
  const figures = {
    events: EVENTS,
    unit: unitSize,
    batch_size: config.batchSize,
    in_flight: inFlight,
    failed,
    rows_per_s: Math.round(EVENTS / seconds),
    sink_cpu_s_per_100k: per100k(ownCpuSeconds() - c0, EVENTS),
    rows_only_cpu_s_per_100k: rowsCpu,
    emulator_cpu_s_per_100k: emu0 === null || emu1 === null ? null : per100k(emu1 - emu0, EVENTS),
    emulator_cpu_percent: emu0 === null || emu1 === null ? null : Math.round(((emu1 - emu0) / seconds) * 100),
    load: load(),
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
} finally {
  await sink.stop();
  await makeBigQuery(config, { autoRetry: false }).dataset(config.dataset).delete({ force: true }).catch(() => {});
}
