import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { notCaptured, parseTableName } from '../core/backfill/plan.js';
import { StreamctlError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import type { Logger } from '../core/logger.js';
import { recordVerifyRun } from '../core/verify/record.js';
import { executeRepair, planRepair, type RepairPlan, type RepairSummary } from '../core/verify/repair.js';
import { enabledVerifiableSinks, verifiableSinks, type VerifySinkName } from '../core/verify/sides.js';
import { verify, VERIFY_DEFAULTS, type VerifyHooks, type VerifyOptions, type VerifyResult } from '../core/verify/verify.js';
import { contextFor } from './shared/context.js';
import type { Output } from './shared/output.js';
import { collect, oneOf, positiveInt, positiveNumber } from './shared/parsers.js';
import { action } from './shared/run.js';
import { stopOnSignals } from './shared/signals.js';

interface VerifyFlags {
  table?: string[];
  sink: VerifySinkName | 'all';
  where?: string;
  chunkSize: number;
  settleTimeout: number;
  maxDifferences: number;
  repair?: boolean;
  execute?: boolean;
  rate?: number;
}

const LINE_EVERY_MS = 5000;

export function verifyCommand(): Command {
  return new Command('verify')
    .description('compare PostgreSQL with Redis and BigQuery chunk by chunk, name the rows that differ, --repair them')
    .option('--table <schema.table>', 'table to compare (repeat for several)', collect)
    .option('--sink <sink>', `${verifiableSinks().join(', ')} or all (the enabled ones)`, oneOf([...verifiableSinks(), 'all'] as const), 'all')
    .option('--where <sql>', 'only rows matching this SQL condition (extra rows in the sinks are then not looked for)')
    .option('--chunk-size <rows>', 'rows per chunk: one snapshot, one hash per side', positiveInt(1_000_000), VERIFY_DEFAULTS.chunkSize)
    .option('--settle-timeout <seconds>', 'how long a re-check waits for a sink to catch up past a chunk', positiveInt(3600), VERIFY_DEFAULTS.settleTimeoutMs / 1000)
    .option('--max-differences <n>', 'differences listed and repaired per table and sink (counts go on)', positiveInt(10_000_000), VERIFY_DEFAULTS.maxDifferences)
    .option('--repair', 'plan a repair of every difference found (a dry run: nothing is written without --execute)')
    .option('--execute', 'with --repair: apply it (backfill reads for missing/differing rows, deletes for extra rows), then verify again')
    .option('--rate <rows/s>', 'with --repair --execute: at most this many re-read rows per second', positiveNumber)
    .addHelpText(
      'after',
      `
Per chunk (keyset order, an exact PostgreSQL snapshot) both sides hash the rows as the
sink stores them (decoded, enriched: dropped, renamed and masked columns as the sink
holds them; the _streamctl stamp left out); only chunks whose count or hash differ are
compared row by row. Redis hashes its rows in a Lua script; BigQuery's 'latest' rows
are hashed in Node. A row that differs is re-checked once the sink has caught up past
the chunk's snapshot, so a running 'stream' gives no false alarm; differences that went
away are reported as transient. Then each sink's keys are compared in buckets to find
extra rows (in the sink, gone from PostgreSQL).

--repair alone prints what it would do and writes nothing. --repair --execute re-reads
missing and differing rows through backfill (exact snapshots; versions that never
overwrite a newer change; each run resumable with 'streamctl backfill --resume'),
sends a delete for each extra row through the changes topic, then verifies again.
'stream' must be running for the sinks to apply the repair. Running it again repairs
whatever is left (that is how an interrupted repair resumes).

Exit: 0 equal (or repaired and equal), 3 a difference found (or left after repair),
2 usage, 4 environment not ready, 130 interrupted.

Examples:
  streamctl verify --table public.orders
  streamctl verify --table public.orders --sink redis --json
  streamctl verify --table public.orders --repair            # dry run
  streamctl verify --table public.orders --repair --execute --rate 2000`,
    )
    .action(
      action(async (out, command) => {
        const flags = command.opts<VerifyFlags>();
        const problems: string[] = [];
        if (!flags.table || flags.table.length === 0) problems.push('say which tables to compare: --table schema.table (repeatable)');
        if (flags.execute && !flags.repair) problems.push('--execute applies a repair: use it with --repair');
        if (flags.rate !== undefined && !(flags.repair && flags.execute)) problems.push('--rate paces a repair: use it with --repair --execute');
        let tables: ReturnType<typeof parseTableName>[] = [];
        try {
          tables = (flags.table ?? []).map(parseTableName);
        } catch (err) {
          problems.push(`--table: ${(err as Error).message}`);
        }
        if (problems.length > 0) throw new StreamctlError(`cannot verify (${problems.length} problem${problems.length === 1 ? '' : 's'})`, EXIT.USAGE, problems);
        const { config } = contextFor(command, out);
        const sinks: VerifySinkName[] = flags.sink === 'all' ? enabledVerifiableSinks(config) : [flags.sink];
        if (sinks.length === 0) throw new StreamctlError(`no sink to compare: ${verifiableSinks().join(' and ')} are all disabled in the configuration`, EXIT.USAGE);
        const logger = out.logger('verify');
        for (const table of notCaptured(tables, config.postgres.tables)) {
          logger.warn('table not in postgres.tables: stream does not capture it, so its sinks are not kept in step with it (and --repair would load rows nothing updates)', { table, postgres_tables: config.postgres.tables.join(',') });
        }

        const stop = stopOnSignals((name) => logger.info(`${name}: stopping after the current chunk (again to stop at once)`));
        const options: VerifyOptions = {
          tables,
          sinks,
          where: flags.where ?? null,
          chunkSize: flags.chunkSize,
          settleTimeoutMs: flags.settleTimeout * 1000,
          rounds: VERIFY_DEFAULTS.rounds,
          maxDifferences: flags.maxDifferences,
        };
        try {
          const first = await runOnce(out, logger, options, stop.signal, config);
          if (first.interrupted) {
            out.result(renderResult(first, out), { ok: false, ...first });
            return EXIT.INTERRUPTED;
          }
          await recordVerifyRun(config, logger, first).catch((err: Error) => logger.warn('could not record the run for status', { error: err.message }));
          if (!flags.repair || first.equal) {
            out.result(renderResult(first, out), { ok: first.equal, ...first });
            return first.equal ? EXIT.OK : EXIT.CHECK_FAILED;
          }
          const plans = planRepair(config, first);
          if (!flags.execute) {
            out.result(`${renderResult(first, out)}\n\n${renderPlan(plans, out)}`, { ok: false, ...first, repair: { executed: false, plans } });
            return EXIT.CHECK_FAILED;
          }
          logger.info('repairing', { reread: plans.reduce((n, p) => n + p.reread.length, 0), deletes: plans.reduce((n, p) => n + p.deletes.length, 0) });
          const repair: RepairSummary = await executeRepair(config, logger, plans, { rate: flags.rate ?? null }, stop.signal, (s) =>
            logger.info('repair backfill run done', { run: s.run, rows: s.rows, state: s.state }),
          );
          if (stop.signal.aborted) {
            out.result(renderPlan(plans, out), { ok: false, ...first, repair });
            return EXIT.INTERRUPTED;
          }
          logger.info('verifying again after the repair');
          const second = await runOnce(out, logger, options, stop.signal, config);
          if (!second.interrupted) await recordVerifyRun(config, logger, second).catch((err: Error) => logger.warn('could not record the run for status', { error: err.message }));
          out.result(`${renderResult(first, out)}\n\n${renderPlan(plans, out)}\n\nafter the repair:\n${renderResult(second, out)}`, {
            ok: second.equal,
            ...first,
            repair,
            after_repair: second,
          });
          if (second.interrupted) return EXIT.INTERRUPTED;
          return second.equal ? EXIT.OK : EXIT.CHECK_FAILED;
        } finally {
          stop.release();
        }
      }),
    );
}

async function runOnce(out: Output, logger: Logger, options: VerifyOptions, signal: AbortSignal, config: Parameters<typeof verify>[0]): Promise<VerifyResult> {
  const view = out.progressBars ? barView(out) : lineView(logger);
  try {
    return await verify(config, logger, options, signal, view.hooks);
  } finally {
    view.stop();
  }
}

function barView(out: Output): { hooks: VerifyHooks; stop: () => void } {
  const multi = new cliProgress.MultiBar(
    { stream: out.progressStream, format: '{table} {bar} {value}/~{total} rows | {speed} rows/s | differing chunks {diff}', hideCursor: true, clearOnComplete: false, fps: 5 },
    cliProgress.Presets.shades_classic,
  );
  let bar: cliProgress.SingleBar | null = null;
  let started = 0;
  return {
    hooks: {
      onTable: (table, estimate) => {
        started = performance.now();
        bar = multi.create(Math.max(estimate, 1), 0, { table, speed: 0, diff: 0 });
      },
      onChunk: (_table, rows, diff) => {
        if (!bar) return;
        const s = (performance.now() - started) / 1000;
        if (rows > bar.getTotal()) bar.setTotal(rows);
        bar.update(rows, { speed: s > 0 ? Math.round(rows / s) : 0, diff });
      },
      onTableDone: (results) => {
        const rows = results[0]?.rows_postgres ?? 0;
        bar?.setTotal(Math.max(rows, 1));
        bar?.update(Math.max(rows, 1));
      },
    },
    stop: () => multi.stop(),
  };
}

function lineView(logger: Logger): { hooks: VerifyHooks; stop: () => void } {
  let last = 0;
  let started = 0;
  return {
    hooks: {
      onTable: (table, estimate) => {
        started = performance.now();
        logger.info('table', { table, estimated_rows: estimate });
      },
      onChunk: (table, rows, diff) => {
        const now = performance.now();
        if (now - last < LINE_EVERY_MS) return;
        last = now;
        const s = (now - started) / 1000;
        logger.info('progress', { table, rows, rows_per_s: s > 0 ? Math.round(rows / s) : 0, differing_chunks: diff });
      },
      onTableDone: (results) => {
        for (const r of results) logger.info('table done', { table: r.table, sink: r.sink, equal: r.equal, rows: r.rows_postgres });
      },
    },
    stop: () => {},
  };
}

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(2)} MiB`;

function renderResult(result: VerifyResult, out: Output): string {
  const c = out.color;
  const lines = [result.equal ? c.green(`verify ${result.run}: equal`) : result.interrupted ? c.yellow(`verify ${result.run}: interrupted`) : c.red(`verify ${result.run}: differences found`)];
  for (const r of result.results) {
    const state = r.equal ? c.green('equal') : c.red('DIFFERENT');
    lines.push(
      `  ${r.table} ~ ${r.sink}: ${state}  ${r.rows_postgres} rows, ${r.chunks} chunks (${r.chunks_differing} differing)  missing ${r.missing}  extra ${r.extra}${r.extras_checked ? '' : ' (not looked for under --where)'}  differing ${r.differing}  transient ${r.transient}${r.unsettled ? `  unsettled ${r.unsettled}` : ''}${r.unchecked ? `  more not listed ${r.unchecked}` : ''}`,
      `    ${r.seconds.toFixed(1)} s, ${Math.round(r.rows_per_s)} rows/s; read ${mb(r.bytes_postgres)} from PostgreSQL, ${mb(r.bytes_sink)} from ${r.sink}${r.confirmed ? '' : c.yellow('  (the sink did not catch up in time: differences unconfirmed; is stream running?)')}`,
    );
    for (const d of r.differences.slice(0, 20)) {
      lines.push(`    ${d.kind.padEnd(8)} ${d.key}${d.columns.length > 0 ? `  columns ${d.columns.join(', ')}` : ''}`);
    }
    if (r.differences.length > 20) lines.push(`    ... ${r.differences.length - 20} more (--json lists them all)`);
  }
  return lines.join('\n');
}

function renderPlan(plans: RepairPlan[], out: Output): string {
  const lines = [out.color.bold('repair plan (dry run unless --execute):')];
  for (const p of plans) {
    lines.push(`  ${p.table}: re-read ${p.reread.length} rows through backfill, delete ${p.deletes.length} extra rows`);
    for (const k of p.cannot) lines.push(`    cannot delete ${k}: its key is masked or dropped by enrichment (delete it in the sink by hand)`);
  }
  return lines.join('\n');
}
