import { Command } from 'commander';
import { EXIT } from '../core/exit-codes.js';
import { checkStatus } from '../core/health/status.js';
import type { CircuitsStatus } from '../core/health/circuits.js';
import { COMPONENTS, type StatusReport } from '../core/health/types.js';
import { sleepUnlessAborted } from '../core/timeout.js';
import { verifyStatus } from '../core/verify/record.js';
import { contextFor } from './shared/context.js';
import type { Output } from './shared/output.js';
import { positiveInt } from './shared/parsers.js';
import { action } from './shared/run.js';
import { stopOnSignals } from './shared/signals.js';

interface StatusFlags {
  watch?: number | true;
  timeout: number;
}

/** 3 when a component is down or the running stream is stuck; else 4 when one is up but not ready; else 0. Warnings never change it. */
export function statusExitCode(report: StatusReport): number {
  if (Object.values(report.components).some((c) => c.state === 'down')) return EXIT.CHECK_FAILED;
  if ((report.stuck ?? []).length > 0) return EXIT.CHECK_FAILED;
  if (report.problems.length > 0) return EXIT.ENV_NOT_READY;
  return EXIT.OK;
}

/** "2h 05m", "3m 07s", "12s": how long a circuit has been open. */
export function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}h ${two(m)}m` : m > 0 ? `${m}m ${two(s)}s` : `${s}s`;
}

function renderCircuits(circuits: CircuitsStatus, out: Output): string {
  const c = out.color;
  if (circuits.error) return `  circuits  ${c.gray(circuits.error)}`;
  if (circuits.sinks.length === 0) return `  circuits  ${c.gray('no sink is delivering in that stream')}`;
  const each = circuits.sinks.map(({ sink, state, open_seconds }) =>
    state === 'closed' ? `${sink} ${c.green('closed')}` : `${sink} ${(state === 'open' ? c.red : c.yellow)(state)} for ${duration(open_seconds ?? 0)}`,
  );
  return `  circuits  ${each.join(', ')}  ${c.gray(`(from ${circuits.source})`)}`;
}

/**
 * One --watch frame drawn over the previous one: cursor home, each line cleared to its end,
 * then everything below cleared, so the screen does not flash blank between checks.
 */
export function inPlaceFrame(text: string): string {
  return `\x1b[H${text.split('\n').map((l) => `${l}\x1b[K`).join('\n')}\n\x1b[J`;
}

function render(report: StatusReport, out: Output): string {
  const c = out.color;
  const lines = [`streamctl status at ${report.checked_at}`, ''];
  for (const name of COMPONENTS) {
    const h = report.components[name];
    const state = h.state === 'up' ? c.green('up  ') : h.state === 'down' ? c.red('down') : c.gray('off ');
    const rtt = h.rtt_ms === null ? '' : `${h.rtt_ms.toFixed(1)} ms`;
    const detail = Object.entries(h.detail)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ');
    lines.push(`  ${name.padEnd(9)} ${state} ${rtt.padStart(9)}  ${h.endpoint}${detail ? `  ${c.gray(detail)}` : ''}`);
    if (h.error) lines.push(`            ${c.red(h.error)}`);
  }
  // The parts that do not answer, named on one line: what exit 3 is about.
  const down = COMPONENTS.filter((name) => report.components[name].state === 'down');
  if (down.length > 0) lines.push('', c.red(`Down: ${down.join(', ')}`));
  const { slot, checkpoint } = report.capture;
  lines.push('', `capture (pipeline ${report.capture.pipeline}, slot ${slot?.name ?? '?'})`);
  if (slot) {
    const mb = (b: number | null) => (b === null ? '?' : `${(b / 1024 / 1024).toFixed(2)} MiB`);
    lines.push(
      slot.exists
        ? `  slot      ${slot.active ? c.green('active') : c.yellow('inactive')}  lag ${mb(slot.lag_bytes)}  WAL retained ${mb(slot.retained_wal_bytes)}`
        : `  slot      ${c.gray('not created yet (stream --role capture creates it)')}`,
    );
  }
  lines.push(
    checkpoint
      ? `  checkpoint lsn ${checkpoint.lsn}${checkpoint.complete ? '' : ` (inside a transaction, position ${checkpoint.position})`}  events ${checkpoint.events_total}  written ${checkpoint.age_seconds} s ago`
      : `  checkpoint ${c.gray('none yet')}`,
  );
  const delivery = report.capture.delivery;
  if (delivery) {
    const lags = Object.entries(delivery.lag).map(([sink, n]) => `${sink} ${n}`);
    const open = Object.entries(delivery.dlq_open ?? {}).map(([sink, n]) => `${sink} ${n}`);
    const dlq = delivery.dlq_open ? `DLQ ${delivery.dlq_depth} open${open.length > 0 ? ` (${open.join(', ')})` : ''}` : `DLQ ${delivery.dlq_depth}`;
    lines.push(`  delivery  lag ${lags.length > 0 ? lags.join(', ') : 'no sink has read yet'}  ${dlq}`);
  }
  for (const e of report.capture.errors) lines.push(`  ${c.red(e)}`);
  if (report.circuits) lines.push(renderCircuits(report.circuits, out));
  const { runs, errors } = report.backfill;
  if (runs.length > 0 || errors.length > 0) lines.push('', 'backfill');
  for (const r of runs) {
    const state = r.state === 'running' ? c.green('running    ') : r.state === 'done' ? c.gray('done       ') : c.yellow('interrupted');
    const where = r.current ? `  table ${r.current} (${r.tables.find((t) => t.table === r.current)?.rows ?? 0} rows)` : '';
    lines.push(`  ${r.run}  ${state}  ${r.rows_total} rows in ${r.chunks} chunks${where}  last chunk ${r.age_seconds} s ago`);
    if (r.state === 'interrupted') lines.push(`    resume with: streamctl backfill --resume ${r.run}`);
  }
  for (const e of errors) lines.push(`  ${c.red(e)}`);
  if ((report.stuck ?? []).length > 0) {
    lines.push('', c.red('Stuck:'));
    for (const s of report.stuck!) lines.push(`  - ${s.reason}`);
  }
  if ((report.warnings ?? []).length > 0) {
    lines.push('', c.yellow('Warnings:'));
    for (const w of report.warnings) lines.push(`  - ${w.message}`, `    fix: ${w.fix}`);
  }
  if (report.problems.length > 0) {
    lines.push('', c.yellow('Not ready:'));
    for (const p of report.problems) lines.push(`  - ${p.component}: ${p.problem}`, `    fix: ${p.fix}`);
  }
  return lines.join('\n');
}

/** The last `streamctl verify` run of each table (src/core/verify/record.ts). */
function renderVerify(verify: Awaited<ReturnType<typeof verifyStatus>>, out: Output): string {
  if (verify.runs.length === 0 && verify.errors.length === 0) return '';
  const c = out.color;
  const lines = ['', '', 'verify (last run per table)'];
  for (const r of verify.runs) {
    const sinks = Object.entries(r.sinks)
      .map(([sink, s]) => `${sink} ${s.equal ? 'equal' : `missing ${s.missing} extra ${s.extra} differing ${s.differing}`}`)
      .join(', ');
    lines.push(`  ${r.table.padEnd(32)} ${r.equal ? c.green('equal    ') : c.red('DIFFERENT')}  ${r.at}  ${r.run}  ${sinks}`);
  }
  for (const e of verify.errors) lines.push(`  ${c.red(e)}`);
  return lines.join('\n');
}

export function statusCommand(): Command {
  return new Command('status')
    .description('health of every component: PostgreSQL, Kafka, Redis, BigQuery, the HTTP endpoint')
    .addHelpText(
      'after',
      "\nCircuits: each sink's circuit state and how long it has been open, read from the running\nstream's /metrics at metrics.host:metrics.port (not a check: exit codes ignore it).\n--watch on a terminal redraws in place; piped, each check is appended.",
    )
    .option('-w, --watch [seconds]', 'check again every N seconds (default 5) until interrupted', positiveInt(3600))
    .option('--timeout <ms>', 'how long each component may take to answer', positiveInt(120_000), 5000)
    .action(
      action(async (out, command) => {
        const flags = command.opts<StatusFlags>();
        const { config } = contextFor(command, out);
        const logger = out.logger('status');
        if (!flags.watch) {
          const report = await checkStatus(config, logger, { timeoutMs: flags.timeout });
          const verify = await verifyStatus(config, logger);
          out.result(`${render(report, out)}${renderVerify(verify, out)}`, { ok: statusExitCode(report) === EXIT.OK, ...report, verify });
          return statusExitCode(report);
        }
        const every = flags.watch === true ? 5 : flags.watch;
        const stop = stopOnSignals(() => {});
        // On a terminal each check redraws the last one in place (cursor hidden meanwhile);
        // otherwise (a pipe, a log, --json) each check is appended.
        const inPlace = out.isTTY && !out.json;
        if (inPlace) out.write('\x1b[2J\x1b[?25l');
        while (!stop.signal.aborted) {
          const report = await checkStatus(config, logger, { timeoutMs: flags.timeout });
          if (inPlace) out.write(inPlaceFrame(render(report, out)));
          else out.result(render(report, out), { ok: statusExitCode(report) === EXIT.OK, ...report });
          await sleepUnlessAborted(every * 1000, stop.signal);
        }
        if (inPlace) out.write('\x1b[?25h');
        return EXIT.INTERRUPTED;
      }),
    );
}
