import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { Backfill, DEFAULT_CHUNK_SIZE, type BackfillSummary, type TablePlan } from '../core/backfill/backfill.js';
import { notCaptured, parseTableName } from '../core/backfill/plan.js';
import { Redactor, type Config } from '../core/config/index.js';
import type { SinkName } from '../core/sinks/contract.js';
import { enabledSinkNames, SINK_NAMES } from '../core/sinks/registry.js';
import { StreamctlError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { contextFor } from './shared/context.js';
import type { Output } from './shared/output.js';
import { collect, positiveInt, positiveNumber } from './shared/parsers.js';
import { action } from './shared/run.js';
import { stopOnSignals } from './shared/signals.js';

interface BackfillFlags {
  table?: string[];
  where?: string;
  chunkSize?: number;
  rate?: number;
  resume?: string;
  sink?: string[];
}

/** `--sink`: known and enabled sinks only, every mistake listed. */
function targetSinks(only: string[] | undefined, config: Config): SinkName[] | null {
  if (!only || only.length === 0) return null;
  const problems = only.filter((s) => !(SINK_NAMES as readonly string[]).includes(s)).map((s) => `--sink ${s}: unknown sink (one of ${SINK_NAMES.join(', ')})`);
  problems.push(...only.filter((s) => (SINK_NAMES as readonly string[]).includes(s) && !enabledSinkNames(config).includes(s as SinkName)).map((s) => `--sink ${s}: that sink is disabled in the config`));
  if (problems.length > 0) throw new StreamctlError('bad --sink', EXIT.USAGE, problems);
  return [...new Set(only)] as SinkName[];
}

/** Plain progress lines (cron, pipes) at most this often, plus one per finished table. */
const LINE_EVERY_MS = 5000;

export function backfillCommand(): Command {
  return new Command('backfill')
    .description('load the rows that already exist into the pipeline as read events (resumable, rate-limitable)')
    .option('--table <schema.table>', 'table to load (repeat for several, loaded in that order)', collect)
    .option('--where <sql>', 'only rows matching this SQL condition (applied to every table)')
    .option('--chunk-size <rows>', `rows per chunk: one snapshot and one Kafka transaction (default ${DEFAULT_CHUNK_SIZE})`, positiveInt(1_000_000))
    .option('--rate <rows/s>', 'at most this many rows per second on average', positiveNumber)
    .option('--resume <run-id>', 'continue an interrupted run where it stopped (its tables, --where, --sink and --rate are kept; a --rate given here replaces the run\'s)')
    .option('--sink <name>', `only this sink gets the rows (repeatable; ${SINK_NAMES.join(' | ')}); the other sinks' deliverers skip them: rebuilds one sink without touching the others`, collect)
    .addHelpText(
      'after',
      `
Each chunk is read in an exact snapshot and written to the changes topic in one Kafka
transaction together with the run's progress, so a run killed at any instant resumes
where it stopped with nothing written twice. A table is locked for the run: a second
backfill of it fails at once (exit 1). Rows backfilled while 'stream' runs never leave
a sink older than PostgreSQL (see README, "Backfill").

Progress: a bar per table on a terminal; plain log lines otherwise (cron). The run id
is printed at the start and on every stop.

SIGINT/SIGTERM: finish the current chunk, print the run id to resume with, exit 130;
a second signal exits 130 at once (the open chunk is aborted, nothing is lost).

Examples:
  streamctl backfill --table public.orders
  streamctl backfill --table public.orders --table public.customers --rate 5000
  streamctl backfill --table public.orders --where "created_at >= '2026-01-01'"
  streamctl backfill --table public.orders --sink redis
  streamctl backfill --resume bf-20261124T101500Z-3fa2c1`,
    )
    .action(
      action(async (out, command) => {
        const flags = command.opts<BackfillFlags>();
        if (!flags.resume && (!flags.table || flags.table.length === 0)) {
          throw new StreamctlError('say which tables to load (--table schema.table, repeatable), or --resume RUN_ID', EXIT.USAGE);
        }
        let tables;
        try {
          tables = (flags.table ?? []).map(parseTableName);
        } catch (err) {
          throw new StreamctlError(`--table: ${(err as Error).message}`, EXIT.USAGE);
        }
        const { config } = contextFor(command, out);
        out.useRedactor(Redactor.forConfig(config));
        const logger = out.logger('backfill');
        const sinks = targetSinks(flags.sink, config);
        for (const table of notCaptured(tables, config.postgres.tables)) {
          logger.warn('table not in postgres.tables: stream does not capture its changes, so the sinks will keep these rows as read now and never update them', { table, postgres_tables: config.postgres.tables.join(',') });
        }

        let runId: string | null = flags.resume ?? null;
        const stop = stopOnSignals(
          (name) => logger.info(`${name}: finishing the current chunk, then stopping (again to stop at once)`),
          (name) => logger.warn(`${name} again: stopping at once; the open chunk is aborted${runId ? `; resume with: streamctl backfill --resume ${runId}` : ''}`),
        );

        const view = out.progressBars ? new BarView(out) : new LineView(logger);
        let summary: BackfillSummary;
        try {
          summary = await new Backfill(config, logger).run(
            { tables, where: flags.where ?? null, chunkSize: flags.chunkSize ?? null, rate: flags.rate ?? null, resume: flags.resume ?? null, sinks },
            stop.signal,
            {
              onStart: (run, resumed, plans, settings) => {
                runId = run;
                logger.info(resumed ? 'resuming backfill run' : 'backfill run started', {
                  run,
                  tables: plans.map((p) => p.table).join(','),
                  sinks: settings.sinks?.join(',') ?? 'all',
                  rate: settings.rate ?? 'unlimited',
                });
                view.start(plans);
              },
              onChunk: (r) => view.chunk(r.table, r.tableRows, r.totalRows),
              onTableDone: (table, rows) => view.tableDone(table, rows),
            },
          );
        } finally {
          view.stop();
          stop.release();
        }
        out.result(renderSummary(summary, out), { ok: summary.state === 'done', ...summary });
        return summary.state === 'done' ? EXIT.OK : EXIT.INTERRUPTED;
      }),
    );
}

function renderSummary(s: BackfillSummary, out: Output): string {
  const c = out.color;
  const lines = [
    s.state === 'done' ? c.green(`backfill run ${s.run} done`) : c.yellow(`backfill run ${s.run} stopped; resume with: streamctl backfill --resume ${s.run}`),
    ...s.tables.map((t) => `  ${t.table.padEnd(32)} ${String(t.rows).padStart(10)} rows  ${t.done ? 'done' : c.yellow('not finished')}`),
    `  ${s.rows} rows in ${s.seconds.toFixed(1)} s (${Math.round(s.rowsPerSecond)} rows/s) this time, ${s.rowsTotal} in the run, ${s.chunks} chunks`,
  ];
  return lines.join('\n');
}

interface ProgressView {
  start(plans: TablePlan[]): void;
  chunk(table: string, tableRows: number, totalRows: number): void;
  tableDone(table: string, rows: number): void;
  stop(): void;
}

/** A bar per table: rows, rows/s, ETA (the total is the planner's estimate, so it is marked ~). */
class BarView implements ProgressView {
  private readonly multi: cliProgress.MultiBar;
  private readonly bars = new Map<string, cliProgress.SingleBar>();

  constructor(out: Output) {
    this.multi = new cliProgress.MultiBar(
      {
        stream: out.progressStream,
        format: '{table} {bar} {value}/~{total} rows | {speed} rows/s | ETA {eta_formatted}',
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 20,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  start(plans: TablePlan[]): void {
    const width = Math.max(...plans.map((p) => p.table.length));
    for (const p of plans) {
      const total = Math.max(p.estimate, p.done, 1);
      const bar = this.multi.create(total, p.state === 'done' ? total : p.done, { table: p.table.padEnd(width), speed: 0 });
      this.bars.set(p.table, bar);
    }
  }

  private readonly started = new Map<string, { at: number; rows: number }>();

  chunk(table: string, tableRows: number): void {
    const bar = this.bars.get(table);
    if (!bar) return;
    const first = this.started.get(table) ?? { at: performance.now(), rows: tableRows };
    this.started.set(table, first);
    const seconds = (performance.now() - first.at) / 1000;
    const speed = seconds > 0 ? Math.round((tableRows - first.rows) / seconds) : 0;
    if (tableRows > bar.getTotal()) bar.setTotal(tableRows);
    bar.update(tableRows, { speed });
  }

  tableDone(table: string, rows: number): void {
    const bar = this.bars.get(table);
    if (!bar) return;
    bar.setTotal(Math.max(rows, 1));
    bar.update(Math.max(rows, 1));
  }

  stop(): void {
    this.multi.stop();
  }
}

/** Plain log lines for cron and pipes: at most one every few seconds, and one per finished table. */
class LineView implements ProgressView {
  private plans = new Map<string, TablePlan>();
  private lastLine = 0;
  private readonly startedAt = performance.now();
  /** Rows a resumed run had written before this process: not part of this process's rate. */
  private doneBefore = 0;

  constructor(private readonly logger: ReturnType<Output['logger']>) {}

  start(plans: TablePlan[]): void {
    this.doneBefore = plans.reduce((n, p) => n + p.done, 0);
    for (const p of plans) {
      this.plans.set(p.table, p);
      this.logger.info('table', { table: p.table, estimated_rows: p.estimate, done_before: p.done, state: p.state });
    }
  }

  chunk(table: string, tableRows: number, totalRows: number): void {
    const now = performance.now();
    if (now - this.lastLine < LINE_EVERY_MS) return;
    this.lastLine = now;
    const seconds = (now - this.startedAt) / 1000;
    const rate = seconds > 0 ? Math.round((totalRows - this.doneBefore) / seconds) : 0;
    const estimate = this.plans.get(table)?.estimate ?? 0;
    this.logger.info('progress', {
      table,
      rows: tableRows,
      estimated_rows: estimate,
      percent: estimate > 0 ? Math.min(100, Math.round((tableRows / estimate) * 100)) : null,
      rows_per_s: rate,
      eta_s: estimate > tableRows && rate > 0 ? Math.round((estimate - tableRows) / rate) : null,
    });
  }

  tableDone(table: string, rows: number): void {
    this.logger.info('table done', { table, rows });
  }

  stop(): void {}
}
