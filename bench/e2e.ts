/**
 * End-to-end latency at a fixed offered rate, per sink: `streamctl stress-test --spawn` with
 * the bench's fixed settings (5,000 events/s for 60 s measured after 5 s of warm-up,
 * transactions of 50 changes from 4 connections, the mixed workload, all three sinks), so
 * the bench and the CI gate measure the same way, with one copy of the code
 * (src/core/stress/). How each sink is measured is in the command's report (and README).
 *
 * It prints the command's own summary (load, latency per sink, counts after the drain,
 * lag, the machine's load and each process's CPU), then one last stdout line of JSON:
 * `rate`, `p50_ms`, `p95_ms`, `p99_ms` (Redis), `sinks` with each sink's figures, `lost`
 * and `duplicates`. Figures only: an SLO missed (exit 3) is a figure here, not a failure.
 *
 * Environment (or flags --rate, --seconds): BENCH_RATE, BENCH_SECONDS, BENCH_WARMUP_SECONDS,
 * BENCH_TX_ROWS, BENCH_CONNECTIONS, BENCH_DRAIN_SECONDS (120), BENCH_SINKS (default: every sink in the registry),
 * BENCH_LAYOUT (one | split: capture + one deliverer per sink), BENCH_STREAM_NODE_ARGS (node
 * flags for the streamctl stream processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`),
 * BENCH_HTTP_BATCH (sinks.http.batchSize for the run: events per POST; default the
 * config's, 1), BENCH_KEEP_REPORT (a file to keep the stress-test report in), BENCH_LIMITS=0 (skip the BigQuery emulator's own insert rate, ./e2e-limits.ts). The JSON line
 * says which batch size was measured, and `stages` where the time went (./e2e-stages.ts): lags, and
 * `stages.latency`, p50/p99 per stage (PostgreSQL commit -> Kafka -> received -> written).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/core/config/index.js';
import { SINK_NAMES } from '../src/core/sinks/registry.js';
import type { StressReport } from '../src/core/stress/report.js';
import { bigQueryInsertLimit, type InsertLimit } from './e2e-limits.js';
import { cpuPer100k, stageFigures, stageLatencyLine } from './e2e-stages.js';
import { ROOT } from './machine.js';

function setting(flag: string, env: string, fallback: number): number {
  const at = process.argv.indexOf(`--${flag}`);
  const raw = at >= 0 ? process.argv[at + 1] : process.env[env];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${flag} / ${env} must be a positive number, got '${raw}'`);
  return v;
}

const RATE = setting('rate', 'BENCH_RATE', 5000);
// One POST per event is the HTTP contract's default; arrays are the opt-in sinks.http.batchSize.
const HTTP_BATCH = process.env['BENCH_HTTP_BATCH'] ? setting('http-batch', 'BENCH_HTTP_BATCH', 1) : undefined;
const SECONDS = setting('seconds', 'BENCH_SECONDS', 60);
const SINKS = (process.env['BENCH_SINKS'] ?? SINK_NAMES.join(',')).split(',').filter(Boolean);
const settings = [
  '--rate', String(RATE),
  '--duration', String(SECONDS),
  '--warmup', String(setting('warmup', 'BENCH_WARMUP_SECONDS', 5)),
  '--tx-size', String(setting('tx-rows', 'BENCH_TX_ROWS', 50)),
  '--connections', String(setting('connections', 'BENCH_CONNECTIONS', 4)),
  '--drain-timeout', String(setting('drain', 'BENCH_DRAIN_SECONDS', 120)),
  '--workload', 'mixed',
  // Every registered sink (src/core/sinks/registry.ts), so a new sink is benched without an edit here.
  '--sinks', SINKS.join(','),
  '--layout', process.env['BENCH_LAYOUT'] ?? 'one',
  // The aim of the engine work, as an SLO: the summary then says met or by how much missed.
  '--slo', 'redis.p99<200ms,loss=0,dup=0',
  // The final-state check reads the whole load table after the drain (minutes on the BigQuery emulator at this size): BENCH_VERIFY=0 skips it.
  ...(process.env['BENCH_VERIFY'] === '0' ? ['--no-verify'] : []),
];

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-e2e-'));
  const file = path.join(dir, 'report.json');
  try {
    // The emulator's own insert rate, by a direct client loop before the run (BENCH_LIMITS=0 skips it):
    // the BigQuery sink cannot deliver faster than its server takes rows, whatever streamctl does.
    let bigqueryLimit: InsertLimit[] | null = null;
    if (SINKS.includes('bigquery') && process.env['BENCH_LIMITS'] !== '0') {
      const batch = loadConfig({ env: process.env }).sinks.bigquery.batchSize;
      bigqueryLimit = await bigQueryInsertLimit(Math.max(10_000, batch * 10), batch, [1, 3]);
      process.stdout.write(`limit: BigQuery emulator's own insert rate, ${batch}-row inserts: ${bigqueryLimit.map((l) => `${l.rows_per_s} rows/s with ${l.in_flight} in flight`).join(', ')}\n`);
    }
    const code = await new Promise<number | null>((resolve, reject) => {
      const nodeArgs = process.env['BENCH_STREAM_NODE_ARGS'];
      const child = spawn(process.execPath, [path.join(ROOT, 'bin/streamctl'), 'stress-test', '--spawn', ...settings, '--report', file, ...(nodeArgs ? [`--stream-node-args=${nodeArgs}`] : [])], {
        env: { ...process.env, NO_COLOR: '1', ...(HTTP_BATCH === undefined ? {} : { STREAMCTL_SINKS_HTTP_BATCH_SIZE: String(HTTP_BATCH) }) },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.once('error', reject);
      child.once('exit', (c) => resolve(c));
    });
    if (code !== 0 && code !== 3) throw new Error(`stress-test exited with ${code}`);
    const r = JSON.parse(readFileSync(file, 'utf8')) as StressReport;
    const redis = r.sinks['redis']?.latency;
    const sinks = Object.fromEntries(
      Object.entries(r.sinks).map(([s, x]) => [s, {
        p50_ms: x.latency.p50_ms, p95_ms: x.latency.p95_ms, p99_ms: x.latency.p99_ms, max_ms: x.latency.max_ms, events: x.latency.count,
        delivered_per_s: x.delivered_rate, lost: x.counts?.lost ?? null, duplicates: x.counts?.duplicates ?? null, method: x.latency.method,
        ...(x.verify === undefined ? {} : { verify_differences: x.verify === null || 'not_run' in x.verify ? null : x.verify.persistent }),
      }]),
    );
    const lost = Object.values(r.sinks).reduce((n, x) => n + (x.counts?.lost ?? 0), 0);
    const duplicates = Object.values(r.sinks).reduce((n, x) => n + (x.counts?.duplicates ?? 0), 0);
    const stages = stageFigures(r, RATE);
    process.stdout.write(
      `stages (measured window): capture slot lag p50/max ${stages.capture_slot_lag_bytes.p50}/${stages.capture_slot_lag_bytes.max} B; ` +
        Object.entries(stages.sinks).map(([s, x]) => `${s} lag p50/max/end ${x.lag_p50}/${x.lag_max}/${x.lag_end} events (max ${x.lag_max_s} s at the offered rate), kept up ${x.kept_up}`).join('; ') + '\n',
    );
    process.stdout.write(`${stageLatencyLine(r)}\n`);
    process.stdout.write(`CPU s per 100k events offered (measured window, load ${r.machine.loadavg_end.join(' ')}): ${Object.entries(cpuPer100k(r)).map(([n, v]) => `${n} ${v}`).join(', ')}\n`);
    if (process.env['BENCH_KEEP_REPORT']) writeFileSync(process.env['BENCH_KEEP_REPORT'], readFileSync(file));
    process.stdout.write(`${JSON.stringify({
      rate: r.load.achieved_rate, layout: r.pipeline.layout, offered_rate: RATE, seconds: SECONDS, http_batch_size: HTTP_BATCH ?? Number(process.env['STREAMCTL_SINKS_HTTP_BATCH_SIZE'] ?? 1),
      p50_ms: redis?.p50_ms ?? null, p95_ms: redis?.p95_ms ?? null, p99_ms: redis?.p99_ms ?? null,
      sinks, stages: { ...stages, latency: r.stages }, lost, duplicates, drained: r.drain.drained, slo_missed: r.slo.missed, loadavg: r.machine.loadavg_end,
      cpu: r.machine.processes.map((p) => `${p.name} ${p.cpu_percent}%`).join(', '),
      cpu_s_per_100k_events: cpuPer100k(r),
      bigquery_limit: bigqueryLimit,
    })}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
