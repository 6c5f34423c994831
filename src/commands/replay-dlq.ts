import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { kafkaClient } from '../core/clients/rdkafka.js';
import { deliverySecrets, Redactor, type Config } from '../core/config/index.js';
import { secretOf } from '../core/delivery/deliverer.js';
import { makeEnricher } from '../core/delivery/enrich.js';
import type { SinkName } from '../core/sinks/contract.js';
import { StreamctlError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { PipelineMetrics } from '../core/metrics.js';
import { startMetricsServer } from '../core/metrics-server.js';
import { canonicalKey, parseSourceRange, parseTime, type LetterFilter } from '../core/replay/filter.js';
import { inspectDlq, type InspectResult, type LetterView } from '../core/replay/inspect.js';
import { SINKS } from '../core/replay/letter.js';
import { enabledSinkNames } from '../core/sinks/registry.js';
import { ReplayRun, type ReplayProgress, type ReplaySummary } from '../core/replay/execute.js';
import { contextFor } from './shared/context.js';
import type { Output } from './shared/output.js';
import { collect, oneOf, positiveInt, positiveNumber } from './shared/parsers.js';
import { action } from './shared/run.js';

interface Flags {
  sink?: SinkName[];
  table?: string[];
  errorClass?: string[];
  since?: string;
  until?: string;
  eventId?: string[];
  key?: string[];
  sourceOffset?: string[];
  limit?: number;
  all?: boolean;
  showEvent?: boolean;
  execute?: boolean;
  to?: SinkName;
  maxAttempts: number;
  rate?: number;
  batchSize: number;
  metricsPort?: number;
}

/** Plain progress lines at most this often. */
const LINE_EVERY_MS = 5000;

const HELP = `
Without --execute nothing is written anywhere: the summary and the open letters that match.
  streamctl replay-dlq                              what failed, by sink, error class and table
  streamctl replay-dlq --sink http --since 2h       only HTTP letters of the last two hours
  streamctl replay-dlq --event-id <id> --show-event one letter with its (masked) event
  streamctl replay-dlq --sink http --execute        re-deliver them, once the cause is fixed

--execute sends each open letter through the same pipeline as 'stream' and records its
outcome on <prefix>.dlq-resolved: replayed, superseded (the sink already holds a newer
version of the row; nothing written) or requeued (it failed again: back in the DLQ with
its attempts added). A resolved letter is never delivered again, so running it twice, or
again after a crash, is safe. One replay runs per pipeline at a time (a new one fences the old).

Times: ISO 8601 (2026-12-01T03:00:00Z) or a duration back from now (90m, 2h, 3d).
Exit: 0 done; 2 bad flag, unknown sink or table, bad time; 3 nothing matched, or some
letters failed again, were held back by --max-attempts or are oversize markers (not
replayable: backfill the row by its key, then they close as superseded); 1 a runtime
failure or a sink whose circuit opened (the cause is not fixed); 130 interrupted
(SIGINT/SIGTERM stop after the write in flight and print how far the run got).`;

export function replayDlqCommand(): Command {
  return new Command('replay-dlq')
    .description('inspect, filter and re-deliver dead-lettered events (a dry run unless --execute)')
    .option('--sink <sink>', 'only letters dead-lettered by this sink (repeatable)', (v: string, prev: SinkName[] = []) => [...prev, oneOf(SINKS)(v)])
    .option('--table <schema.table>', 'only events of this table (repeatable)', collect)
    .option('--error-class <class>', 'only letters of this error class, e.g. http_400, invalid_row (repeatable)', collect)
    .option('--since <iso-time>', 'only letters whose last failure is at or after this time')
    .option('--until <iso-time>', 'only letters whose last failure is before this time')
    .option('--event-id <id>', 'only this event (repeatable)', collect)
    .option('--key <json>', 'only this row, its primary key as JSON: \'{"id":7}\' (repeatable)', collect)
    .option('--source-offset <topic:partition:from-to>', 'only letters read from this range of the changes topic (repeatable)', collect)
    .option('--limit <n>', 'list at most N letters (inspect; default 50) / replay at most N (--execute)', positiveInt())
    .option('--all', 'inspect: list resolved letters too (replayed, superseded, requeued)')
    .option('--show-event', 'inspect: print each letter\'s event, enriched as the sink gets it (masked columns stay masked)')
    .option('--execute', 're-deliver for real (without it, only show what would be replayed)')
    .option('--to <sink>', '--execute: deliver to this sink instead of the one that dead-lettered each letter', oneOf(SINKS))
    .option('--max-attempts <n>', '--execute: leave open (not replayed) letters that already failed N times', positiveInt(), 10)
    .option('--rate <events/s>', '--execute: at most this many events per second', positiveNumber)
    .option('--batch-size <n>', '--execute: letters per sink write and per Kafka transaction', positiveInt(5000), 100)
    .option('--metrics-port <port>', '--execute: serve /metrics (dlq_replayed_total and the sink metrics) on this port while running', positiveInt(65535))
    .addHelpText('after', HELP)
    .action(
      action(async (out, command) => {
        const flags = command.opts<Flags>();
        const { config } = contextFor(command, out);
        out.useRedactor(Redactor.forConfig(config, deliverySecrets(config)));
        const filter = filterOf(flags, config);
        const logger = out.logger('replay-dlq');
        const kafka = kafkaClient(config.kafka, logger);
        const stop = new AbortController();
        const onSignal = (name: string) => {
          if (stop.signal.aborted) return;
          logger.info(`${name}: stopping after the write in flight`);
          stop.abort();
        };
        const sigint = () => onSignal('SIGINT');
        const sigterm = () => onSignal('SIGTERM');
        process.on('SIGINT', sigint);
        process.on('SIGTERM', sigterm);
        try {
          if (!flags.execute) {
            const enrich = makeEnricher(config.enrich, secretOf(config.enrich.maskKey, config.enrich.maskKeyFile), config.pipeline.id);
            const result = await inspectDlq(kafka, config, { filter, limit: flags.limit ?? 50, all: flags.all === true, enrich, showEvent: flags.showEvent === true, signal: stop.signal });
            out.result(renderInspect(result, out, flags.showEvent === true), { ok: true, ...result });
            if (stop.signal.aborted) return EXIT.INTERRUPTED;
            if (result.summary.letters === 0) {
              logger.warn(result.summary.read === 0 ? 'the DLQ is empty: nothing has been dead-lettered' : 'no dead letter matches these filters', { dlq_records_read: result.summary.read });
              return EXIT.CHECK_FAILED;
            }
            return EXIT.OK;
          }
          const metrics = new PipelineMetrics({ defaultMetrics: flags.metricsPort !== undefined });
          const server = flags.metricsPort !== undefined ? await startMetricsServer(metrics, { host: config.metrics.host, port: flags.metricsPort, ready: () => true, setting: '--metrics-port' }) : null;
          const view = out.progressBars ? new BarView(out) : new LineView(out);
          const replay = new ReplayRun(kafka, config, logger, metrics);
          logger.info('replay run', { run: replay.run });
          let summary: ReplaySummary;
          try {
            summary = await replay.execute({
              filter,
              ...(flags.to ? { to: flags.to } : {}),
              maxAttempts: flags.maxAttempts,
              ...(flags.rate ? { rate: flags.rate } : {}),
              ...(flags.limit ? { limit: flags.limit } : {}),
              batchSize: flags.batchSize,
              signal: stop.signal,
              onProgress: (p) => view.update(p),
            });
          } finally {
            view.stop();
            await server?.close();
          }
          out.result(renderSummary(summary, out), { ok: summary.complete && summary.counts.requeued === 0 && summary.counts.held_back === 0 && summary.counts.oversize === 0, ...summary });
          if (summary.interrupted) return EXIT.INTERRUPTED;
          if (summary.stoppedBy) return EXIT.RUNTIME;
          if (summary.matched === 0) {
            logger.warn('no dead letter matches these filters', { dlq_records_read: summary.read });
            return EXIT.CHECK_FAILED;
          }
          if (summary.open === 0) logger.info('every matching letter is already resolved: nothing to replay');
          return summary.counts.requeued > 0 || summary.counts.held_back > 0 || summary.counts.oversize > 0 ? EXIT.CHECK_FAILED : EXIT.OK;
        } finally {
          process.off('SIGINT', sigint);
          process.off('SIGTERM', sigterm);
        }
      }),
    );
}

/** Every flag checked at once; all problems reported together (exit 2). */
export function filterOf(flags: Flags, config: Config): LetterFilter {
  const problems: string[] = [];
  const filter: LetterFilter = {};
  const enabled = enabledSinkNames(config);
  for (const sink of [...(flags.sink ?? []), ...(flags.to ? [flags.to] : [])]) {
    if (!enabled.includes(sink) && flags.execute) problems.push(`sink '${sink}' is disabled in this configuration (enabled: ${enabled.join(', ') || 'none'})`);
  }
  if (flags.sink?.length) filter.sinks = flags.sink;
  if (flags.table?.length) {
    filter.tables = flags.table.map((t) => (t.includes('.') ? t : `public.${t}`));
    const known = config.postgres.tables;
    for (const t of filter.tables) {
      if (!/^[^.]+\.[^.]+$/.test(t)) problems.push(`--table '${t}' is not schema.table`);
      else if (known.length > 0 && !known.includes(t)) problems.push(`--table '${t}' is not a table of this pipeline (postgres.tables: ${known.join(', ')})`);
    }
  }
  if (flags.errorClass?.length) filter.errorClasses = flags.errorClass;
  for (const [name, text] of [
    ['since', flags.since],
    ['until', flags.until],
  ] as const) {
    if (text === undefined) continue;
    try {
      filter[name] = parseTime(text);
    } catch (err) {
      problems.push(`--${name}: ${(err as Error).message}`);
    }
  }
  if (filter.since !== undefined && filter.until !== undefined && filter.until <= filter.since) problems.push('--until must be after --since');
  if (flags.eventId?.length) filter.eventIds = flags.eventId;
  // Each value parsed on its own, so every bad one is reported, not only the first.
  const parseEach = <T,>(values: string[], parse: (v: string) => T, label: string): T[] =>
    values.flatMap((v) => {
      try {
        return [parse(v)];
      } catch (err) {
        problems.push(`${label}${(err as Error).message}`);
        return [];
      }
    });
  if (flags.key?.length) filter.keys = parseEach(flags.key, canonicalKey, '');
  if (flags.sourceOffset?.length) filter.sourceOffsets = parseEach(flags.sourceOffset, parseSourceRange, '--source-offset ');
  if (!flags.execute) {
    for (const flag of ['to', 'rate', 'metricsPort'] as const) if (flags[flag] !== undefined) problems.push(`--${flag.replace('metricsPort', 'metrics-port')} only makes sense with --execute`);
  } else if (flags.showEvent || flags.all) problems.push('--show-event and --all are for inspecting (without --execute)');
  if (problems.length > 0) throw new StreamctlError(`bad replay-dlq flags (${problems.length} problem${problems.length === 1 ? '' : 's'})`, EXIT.USAGE, problems);
  return filter;
}

export function renderInspect(result: InspectResult, out: Output, showEvent: boolean): string {
  const c = out.color;
  const s = result.summary;
  const lines: string[] = [];
  const open = s.states.open + s.states.failing;
  lines.push(
    `${c.bold(String(s.letters))} dead letter(s) match (${s.read} DLQ records read, ${s.duplicates} duplicate copies folded): ` +
      `${c.red(`${s.states.open} open`)}, ${c.yellow(`${s.states.failing} failing again`)}, ${c.green(`${s.states.replayed} replayed`)}, ${s.states.superseded} superseded`,
  );
  if (open > 0) lines.push(`open letters failed between ${s.oldest_failure ?? '?'} and ${s.newest_failure ?? '?'}`);
  const rows: string[][] = [];
  for (const [sink, byClass] of Object.entries(s.open_by)) {
    for (const [cls, byTable] of Object.entries(byClass)) for (const [table, n] of Object.entries(byTable)) rows.push([sink, cls, table, String(n)]);
  }
  if (rows.length > 0) lines.push('', ...table(['SINK', 'ERROR CLASS', 'TABLE', 'OPEN'], rows, out));
  if (result.letters.length > 0) {
    lines.push('');
    if (out.isTTY) {
      lines.push(
        ...table(
          ['STATE', 'SINK', 'TABLE', 'KEY', 'OP', 'ERROR', 'ATT', 'LAST FAILURE', 'SOURCE', 'EVENT ID'],
          result.letters.map((l) => [paintState(l.state, out), l.sink, l.table ?? '?', l.key ?? '-', l.op ?? '?', `${l.error_class}: ${l.message}`.slice(0, 60), String(l.attempts), l.last_failure_at, sourceOf(l), l.event_id]),
          out,
        ),
      );
      if (showEvent) for (const l of result.letters) lines.push(`${c.gray(l.event_id)} ${JSON.stringify(l.event)}`);
    } else {
      for (const l of result.letters) {
        lines.push(
          `letter state=${l.state} sink=${l.sink} table=${l.table ?? '?'} key=${l.key ?? '-'} op=${l.op ?? '?'} error_class=${l.error_class} attempts=${l.attempts} ` +
            `first_failure=${l.first_failure_at} last_failure=${l.last_failure_at} source=${sourceOf(l)} event_id=${l.event_id}${l.replay_run ? ` replay_run=${l.replay_run}` : ''} message=${JSON.stringify(l.message)}`,
        );
        if (showEvent) lines.push(`event ${l.event_id} ${JSON.stringify(l.event)}`);
      }
    }
  }
  if (result.truncated) lines.push('', c.gray(`more letters match than listed: raise --limit or narrow the filters`));
  if (open > 0) lines.push('', c.gray('fix the cause, then re-deliver with the same filters and --execute'));
  return lines.join('\n');
}

function renderSummary(s: ReplaySummary, out: Output): string {
  const c = out.color;
  const state = s.interrupted ? c.yellow('interrupted') : s.stoppedBy ? c.red('stopped') : c.green('done');
  const lines = [
    `replay ${s.run} ${state}: ${c.green(`${s.counts.replayed} replayed`)}, ${s.counts.superseded} superseded, ${c.red(`${s.counts.requeued} failed again (requeued)`)}, ` +
      `${s.counts.held_back} held back by --max-attempts; ${s.duplicates} duplicate copies folded; ${s.read} DLQ records read`,
  ];
  for (const [sink, n] of Object.entries(s.bySink)) lines.push(`  ${sink.padEnd(9)} replayed ${n.replayed}  superseded ${n.superseded}  requeued ${n.requeued}`);
  if (s.stoppedBy) lines.push(c.red(s.stoppedBy));
  if (s.interrupted) lines.push('run the same command again to go on: what is resolved is not replayed again');
  if (s.counts.requeued > 0) lines.push("see why with: streamctl replay-dlq (the requeued letters are 'failing again')");
  if (s.counts.oversize > 0) {
    lines.push(
      c.yellow(`${s.counts.oversize} oversize markers left open: they carry no row, so they are not replayed.`) +
        ' Raise kafka.maxRecordBytes, backfill each row by its key (streamctl backfill --table T --where "<key condition>"), then run this again: they close as superseded',
    );
  }
  return lines.join('\n');
}

function sourceOf(l: LetterView): string {
  return `${l.source.topic}:${l.source.partition}:${l.source.offset}`;
}

function paintState(state: string, out: Output): string {
  const c = out.color;
  return state === 'open' ? c.red(state) : state === 'failing' ? c.yellow(state) : state === 'replayed' ? c.green(state) : c.gray(state);
}

function table(header: string[], rows: string[][], out: Output): string[] {
  const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => strip(r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell + ' '.repeat(Math.max(0, widths[i]! - strip(cell).length))).join('  ').trimEnd();
  return [out.color.bold(line(header)), ...rows.map(line)];
}

interface ProgressView {
  update(p: ReplayProgress): void;
  stop(): void;
}

/** A bar over the DLQ records read, with the outcomes so far. */
class BarView implements ProgressView {
  private readonly bar: cliProgress.SingleBar;
  private started = false;
  constructor(out: Output) {
    this.bar = new cliProgress.SingleBar(
      { stream: out.progressStream, format: 'replay {bar} {value}/{total} DLQ records | replayed {replayed} superseded {superseded} requeued {requeued}', hideCursor: true, fps: 5 },
      cliProgress.Presets.shades_classic,
    );
  }
  update(p: ReplayProgress): void {
    if (!this.started) {
      this.bar.start(Math.max(1, p.total), 0, { replayed: 0, superseded: 0, requeued: 0 });
      this.started = true;
    }
    this.bar.update(Math.min(p.read, Math.max(1, p.total)), p.counts);
  }
  stop(): void {
    if (this.started) this.bar.stop();
  }
}

/** A log line every few seconds for cron and pipes. */
class LineView implements ProgressView {
  private last = 0;
  private readonly logger;
  constructor(out: Output) {
    this.logger = out.logger('replay-dlq');
  }
  update(p: ReplayProgress): void {
    if (Date.now() - this.last < LINE_EVERY_MS) return;
    this.last = Date.now();
    this.logger.info('progress', { dlq_records_read: p.read, dlq_records: p.total, ...p.counts });
  }
  stop(): void {}
}
