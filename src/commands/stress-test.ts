import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { deliverySecrets, Redactor } from '../core/config/index.js';
import { enabledSinkNames, SINK_NAMES, type SinkName } from '../core/sinks/registry.js';
import { StreamctlError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { renderHtml } from '../core/stress/html.js';
import type { SinkReport, StressReport, TimelinePoint } from '../core/stress/report.js';
import { runStressTest } from '../core/stress/run.js';
import { parseSlos } from '../core/stress/slo.js';
import { WORKLOADS, type Workload } from '../core/stress/workload.js';
import { contextFor } from './shared/context.js';
import type { Output } from './shared/output.js';
import { collect, oneOf, positiveInt, positiveNumber } from './shared/parsers.js';
import { action } from './shared/run.js';
import { stopOnSignals } from './shared/signals.js';

const BIN = fileURLToPath(new URL('../../../bin/streamctl', import.meta.url));
export const DEFAULT_SLO = 'p99<200ms,loss=0,dup=0';

const share = (raw: string): number => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('must be a share between 0 and 1');
  return n;
};
const seconds = (raw: string): number => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number of seconds, 0 or more');
  return n;
};
const port = (raw: string): number => {
  if (!/^\d+$/.test(raw) || Number(raw) > 65535) throw new InvalidArgumentError('must be a port 0-65535 (0: any free port)');
  return Number(raw);
};

interface Flags {
  rate: number;
  duration: number;
  warmup: number;
  connections: number;
  table?: string;
  workload: Workload;
  txSize: number;
  rowBytes: number;
  keyChangeShare: number;
  toastShare: number;
  toastBytes: number;
  spawn?: boolean;
  layout: 'one' | 'split';
  sinks?: string;
  httpReceiver?: number;
  metricsUrl?: string[];
  drainTimeout: number;
  verify: boolean;
  slo: string;
  sloP99Ms?: number;
  report?: string;
  reportHtml?: string;
  killDelivererEvery?: number;
  streamNodeArgs?: string;
}

export function stressTestCommand(): Command {
  return new Command('stress-test')
    .description('drive an open-loop load into PostgreSQL through a real stream; measure latency per sink from the sink\'s side, count loss, duplicates and order after a drain; exit 3 when an SLO is missed')
    .option('--rate <events/s>', 'offered load, events per second (open loop: fixed by the schedule)', positiveNumber, 1000)
    .option('--duration <seconds>', 'measured time under load', positiveInt(86_400), 60)
    .option('--warmup <seconds>', 'load before the measured window (not measured)', seconds, 5)
    .option('--connections <n>', 'PostgreSQL connections writing the load', positiveInt(64), 4)
    .option('--table <schema.table>', 'write into this table (made by stress-test\'s layout; must be captured); default: a table of its own, created and dropped')
    .addOption(new Option('--workload <kind>', `what the transactions do: ${WORKLOADS.join(' | ')}`).argParser(oneOf(WORKLOADS)).default('insert'))
    .option('--tx-size <events>', 'changes per transaction', positiveInt(10_000), 10)
    .option('--row-bytes <bytes>', 'payload bytes per row', positiveInt(1_000_000), 100)
    .option('--key-change-share <0-1>', 'share of updates that change the primary key', share, 0)
    .option('--toast-share <0-1>', 'share of inserts and updates that carry a large TOASTed value', share, 0)
    .option('--toast-bytes <bytes>', 'size of a large value', positiveInt(100_000_000), 16_384)
    .option('--spawn', 'start streamctl stream itself (an isolated pipeline) and stop it at the end; default: test the running one of the config')
    .addOption(new Option('--layout <layout>', 'with --spawn: one process, or split: capture + one deliverer per sink').argParser(oneOf(['one', 'split'] as const)).default('one'))
    .option('--sinks <list>', 'sinks under test, comma separated (default: those enabled in the config)')
    .option('--http-receiver <port>', 'run the HTTP receiver on this port and measure the HTTP sink there (with --spawn: always, on a free port by default)', port)
    .option('--metrics-url <url>', 'a running pipeline process\'s /metrics (repeatable): processing_latency_seconds is the latency fallback for a sink this command cannot read', collect)
    .option('--drain-timeout <seconds>', 'after the load, how long to wait for every sink to catch up', positiveNumber, 120)
    .option('--no-verify', 'skip the final-state comparison of the load table with Redis and BigQuery after the drain (for very large tables: verify reads every row)')
    .option('--slo <list>', 'SLOs, comma separated: p50|p90|p99|p99.9|max|mean<T (us, ms, s), loss|dup|order|dlq=N, lag<BYTES (KiB, MiB...), rate>=N; prefix a sink to scope one (http.p99<1s)', DEFAULT_SLO)
    .option('--slo-p99-ms <ms>', 'shorthand: adds p99<MSms to --slo', positiveNumber)
    .option('--report <file>', 'write the JSON report (schemas/stress-report.v1.schema.json) to this file')
    .option('--report-html <file>', 'write a self-contained HTML report (percentile plot, rate and lag over time)')
    .option('--stream-node-args <flags>', 'with --spawn: node flags for the stream processes, e.g. --stream-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"')
    .option('--kill-deliverer-every <seconds>', 'with --spawn: SIGKILL a deliverer this often during the load and restart it', positiveNumber)
    .addHelpText(
      'after',
      `
Latency is commit-schedule to sink: each event's intended send time comes from the schedule, so a
stall is measured instead of hidden (no coordinated omission). Redis: one row per transaction polled
until its version arrives; BigQuery: ingested_at in the changes_once view; HTTP: arrival at the
command's own receiver. The report names the method of each figure.

Example (CI):  streamctl stress-test --spawn --rate 500 --duration 30 \\
                 --slo 'p99<500ms,loss=0,dup=0,lag<64MiB' --report stress.json --report-html stress.html

After the drain, verify compares the load table's final state in PostgreSQL with Redis and
BigQuery, every column of every row (on by default; --no-verify skips it). The two checks
answer different questions: the per-event counts (lost, dup, order) read every event in the
sink's view, which only an event-level reader can do; verify compares the final rows, which
catches a wrong column the events' sequence numbers cannot show. A persistent difference
found by verify misses loss=0 like a lost event. HTTP keeps no state: events only.

Exit 3 names every SLO missed and by how much; exit 4 when the running pipeline does not capture
the load's table (the message says how to fix it).`,
    )
    .action(
      action(async (out, command) => {
        const f = command.opts<Flags>();
        const { config } = contextFor(command, out);
        out.useRedactor(Redactor.forConfig(config, deliverySecrets(config)));
        const problems: string[] = [];
        const sinks = (f.sinks ? f.sinks.split(',').map((s) => s.trim()) : enabledSinkNames(config)) as SinkName[];
        for (const s of sinks) if (!(SINK_NAMES as readonly string[]).includes(s)) problems.push(`--sinks: unknown sink '${s}' (one of ${SINK_NAMES.join(', ')})`);
        if (sinks.length === 0) problems.push('no sink to test: enable one in the config or name them with --sinks');
        if (f.killDelivererEvery !== undefined && !f.spawn) problems.push('--kill-deliverer-every needs --spawn (it kills processes this command started)');
        for (const u of f.metricsUrl ?? []) if (!/^https?:\/\/[^\s]+$/.test(u)) problems.push(`--metrics-url '${u}': expected an http(s) URL`);
        for (const [flag, file] of [['--report', f.report], ['--report-html', f.reportHtml]] as const) {
          if (file !== undefined && !existsSync(path.dirname(path.resolve(file)))) problems.push(`${flag} ${file}: the folder ${path.dirname(path.resolve(file))} does not exist`);
        }
        if (f.layout === 'split' && !f.spawn) problems.push('--layout split needs --spawn');
        if (f.table !== undefined && !/^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?$/.test(f.table)) problems.push(`--table '${f.table}': expected schema.table`);
        const sloSpec = [f.slo, f.sloP99Ms !== undefined ? `p99<${f.sloP99Ms}ms` : ''].filter(Boolean).join(',');
        const { slos, problems: sloProblems } = parseSlos(sloSpec, sinks);
        problems.push(...sloProblems);
        if (problems.length > 0) throw new StreamctlError(`bad stress-test options (${problems.length} problem${problems.length === 1 ? '' : 's'})`, EXIT.USAGE, problems);

        const logger = out.logger('stress-test');
        const stop = stopOnSignals((name) => logger.warn(`${name}: stopping the load, then the pipeline (again to stop at once)`));
        const live = out.progressBars ? new LiveLine(out) : null;
        let report: StressReport;
        try {
          report = await runStressTest({
            config,
            rate: f.rate,
            durationS: f.duration,
            warmupS: f.warmup,
            connections: f.connections,
            txSize: f.txSize,
            rowBytes: f.rowBytes,
            workload: f.workload,
            keyChangeShare: f.keyChangeShare,
            toastShare: f.toastShare,
            toastBytes: f.toastBytes,
            table: f.table,
            spawn: f.spawn === true,
            layout: f.layout,
            sinks,
            httpReceiverPort: f.httpReceiver,
            metricsUrls: f.metricsUrl,
            drainTimeoutS: f.drainTimeout,
            verify: f.verify !== false,
            slos,
            sloSpec,
            killDelivererEveryS: f.killDelivererEvery,
            bin: BIN,
            logDir: os.tmpdir(),
            nodeArgs: (f.streamNodeArgs ?? '').split(' ').filter(Boolean),
            signal: stop.signal,
            onLog: (m) => (live ? live.note(m) : logger.info(m)),
            onSample: (p, l) => (live ? live.update(p, l.p99_ms) : plainSample(logger, p, l.p99_ms)),
          });
        } finally {
          live?.done();
          stop.release();
        }
        if (stop.signal.aborted) return EXIT.INTERRUPTED;
        if (f.report) writeFileSync(f.report, `${JSON.stringify(report, null, 2)}\n`);
        if (f.reportHtml) writeFileSync(f.reportHtml, renderHtml(report));
        out.result(summaryText(out, report, [f.report, f.reportHtml].filter((x): x is string => !!x)), report);
        return report.ok ? EXIT.OK : EXIT.CHECK_FAILED;
      }),
    );
}

function plainSample(logger: ReturnType<Output['logger']>, p: TimelinePoint, p99: Record<string, number | null>): void {
  logger.info('sample', {
    t_s: p.t_s,
    phase: p.phase,
    rate: p.rate,
    committed: p.committed_events,
    slot_lag_bytes: p.slot_lag_bytes,
    ...Object.fromEntries(Object.entries(p.consumer_lag).map(([s, v]) => [`${s}_lag`, v])),
    ...Object.fromEntries(Object.entries(p99).filter(([, v]) => v !== null).map(([s, v]) => [`${s}_p99_ms`, v])),
  });
}

/** One line redrawn in place on a terminal (stderr): rate, p99 so far, lag. */
class LiveLine {
  constructor(private readonly out: Output) {}
  update(p: TimelinePoint, p99: Record<string, number | null>): void {
    const lat = Object.entries(p99).map(([s, v]) => `${s} p99 ${v === null ? '-' : `${v} ms`}`).join(', ');
    const lag = Object.entries(p.consumer_lag).map(([s, v]) => `${s} ${v}`).join(' ');
    this.out.progressStream.write(`\r\x1b[K${this.out.color.cyan(p.phase)} ${p.t_s}s  ${p.rate} ev/s  ${lat}  lag: slot ${fmtBytes(p.slot_lag_bytes)}, ${lag}`);
  }
  note(message: string): void {
    this.out.progressStream.write(`\r\x1b[K${message}\n`);
  }
  done(): void {
    this.out.progressStream.write('\r\x1b[K');
  }
}

const fmtBytes = (b: number | null): string => (b === null ? '-' : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(0)} KiB` : `${b} B`);
const v = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : String(x));

/** The verify column (one word, for the plain key=value lines too): equal, unequal:ROWS, off (--no-verify), not-run, '-' (no state to compare). */
function verifyCell(r: SinkReport['verify']): string {
  if (r === undefined) return '-';
  if (r === null) return 'off';
  if ('not_run' in r) return 'not-run';
  return r.equal ? 'equal' : `unequal:${r.persistent}`;
}

function verifyLine(r: SinkReport['verify']): string | null {
  if (r === undefined) return null;
  if (r === null) return 'off (--no-verify): loss is the per-event count alone';
  if ('not_run' in r) return `not run: ${r.not_run}`;
  const examples = r.examples.map((e) => `${e.kind} ${e.key}${e.columns.length ? ` (${e.columns.join(', ')})` : ''}`).join('; ');
  return `${r.rows_compared} rows compared in ${r.seconds} s; ${r.equal ? 'equal' : 'NOT equal'}: missing ${r.missing}, extra ${r.extra}, differing ${r.differing}` +
    `${r.unchecked ? `, unchecked ${r.unchecked}` : ''}, transient ${r.transient}${r.unsettled ? `, unsettled ${r.unsettled}` : ''}${r.confirmed ? '' : ' (unconfirmed: the sink did not catch up in time)'}` +
    (examples ? `; e.g. ${examples}` : '');
}

/** The summary: a table on a terminal, plain lines otherwise. */
function summaryText(out: Output, r: StressReport, files: string[]): string {
  const c = out.color;
  const l = r.load;
  const lines = [
    `stress-test ${r.pipeline.mode === 'spawn' ? `--spawn (layout ${r.pipeline.layout})` : 'against the running pipeline'} ${r.pipeline.pipeline_id}, table ${r.pipeline.table}, workload ${r.settings.workload}`,
    `load: offered ${l.offered_rate} events/s, achieved ${l.achieved_rate} events/s over ${r.settings.duration_s} s (+${r.settings.warmup_s} s warm-up); ${l.committed_events} events in ${l.committed_transactions} transactions; ` +
      `writer behind schedule: ${l.behind_schedule.late_transactions} transactions late by >${l.behind_schedule.late_threshold_ms} ms (p99 ${v(l.behind_schedule.p99_ms)} ms, max ${v(l.behind_schedule.max_ms)} ms)`,
  ];
  const head = ['sink', 'p50', 'p90', 'p99', 'p99.9', 'max', 'mean', 'events', 'rate/s', 'lost', 'dup', 'order', 'dlq', 'verify'];
  const rows = Object.entries(r.sinks).map(([s, x]) => [
    s, v(x.latency.p50_ms), v(x.latency.p90_ms), v(x.latency.p99_ms), v(x.latency['p99.9_ms']), v(x.latency.max_ms), v(x.latency.mean_ms), String(x.latency.count),
    v(x.delivered_rate), v(x.counts?.lost), v(x.counts?.duplicates), v(x.counts?.out_of_order), v(x.counts?.dlq), verifyCell(x.verify),
  ]);
  if (out.isTTY) {
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const fmt = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
    lines.push(`latency in ms (intended send -> sink), counts after the drain:`, c.bold(fmt(head)), ...rows.map(fmt));
  } else {
    for (const row of rows) lines.push(`${row[0]}: ${head.slice(1).map((h, i) => `${h}${i < 6 ? '_ms' : ''}=${row[i + 1]}`).join(' ')}`);
  }
  for (const [s, x] of Object.entries(r.sinks)) {
    lines.push(`  ${s} latency: ${x.latency.method}`);
    if (x.counts) lines.push(`  ${s} counts (${x.counts.unit}): ${x.counts.method}; expected ${x.counts.expected}, unexpected ${x.counts.unexpected}${x.counts.lingering ? `, of the lost ${x.counts.lingering} still present that should be gone (deleted or moved by a key change)` : ''}${x.counts.copies_collapsed ? `, physical copies collapsed by the view ${x.counts.copies_collapsed}` : ''}`);
    const vf = verifyLine(x.verify);
    if (vf) lines.push(`  ${s} verify (final state, rows): ${vf}`);
    if (x.note) lines.push(`  ${s}: ${x.note}`);
  }
  lines.push(`lag: slot max ${fmtBytes(r.lag.slot_max_bytes)}; consumer max ${Object.entries(r.lag.consumer_max).map(([s, n]) => `${s} ${n}`).join(', ')}; ` +
    `drain ${r.drain.drained ? `done in ${r.drain.seconds} s` : `NOT done within ${r.drain.timeout_s} s (waiting for ${r.drain.waiting_for.join(', ')})`}` +
    (r.faults.deliverer_kills ? `; ${r.faults.deliverer_kills} deliverer kills` : ''));
  const m = r.machine;
  lines.push(`machine: ${m.cpus} CPUs (${m.cpu_model}), load average ${m.loadavg_start.join(' ')} -> ${m.loadavg_end.join(' ')}; CPU % of one core: ${m.processes.map((p) => `${p.name} ${v(p.cpu_percent)}`).join(', ')}; steal ${m.steal_percent === null ? '-' : `${m.steal_percent} %`} (the host's share of this machine's CPU time)`);
  lines.push(r.ok ? c.green(`SLOs met: ${r.settings.slo}`) : c.red(`SLO missed (exit 3):\n${r.slo.missed.map((x) => `  - ${x}`).join('\n')}`));
  if (files.length) lines.push(`report written: ${files.map((f2) => path.resolve(f2)).join(', ')}`);
  return lines.join('\n');
}
