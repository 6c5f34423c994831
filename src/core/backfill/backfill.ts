import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { checkpointAdmin } from '../clients/restart-safe-admin.js';
import { makePgClient } from '../clients/postgres.js';
import type { Config } from '../config/types.js';
import { oversizeLogFields } from '../event/oversize.js';
import { readinessProblems, readSettings } from '../postgres/readiness.js';
import { ensureTopics } from '../kafka/topics.js';
import { isFenced } from '../kafka/retry.js';
import type { Logger } from '../logger.js';
import { EnvironmentNotReadyError, StreamctlError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { sleepUnlessAborted } from '../timeout.js';
import { decodeQueryRow, RAW_TEXT_TYPES, SESSION_OPTIONS, TypeRegistry } from '../source/pg-types.js';
import { backfillProducer, readProgress, type BackfillProducer } from './kafka-writer.js';
import { ChunkPipeline } from './chunk-pipeline.js';
import { lockTables } from './lock.js';
import { copyRowBatches, drainCopy, type TextRow } from './copy-rows.js';
import { chunkCopy, parseTableName, qualified, tableText, type TableRef } from './plan.js';
import { afterChunk, afterTable, encodeProgress, isDone, newProgress, newRunId, totalRows, type BackfillProgress, type RunSettings } from './progress.js';
import type { SinkName } from '../sinks/contract.js';
import { targetSinksHeaders } from '../event/targets.js';
import { RateLimiter } from './rate-limiter.js';
import { ReadEventEncoder } from './read-events.js';
import { ChunkSnapshots } from './snapshot.js';
import { describeTables, estimateRows, type TableInfo } from './tables.js';

export interface BackfillOptions {
  /** Tables for a new run; for a resumed run, empty or the run's own tables. */
  tables: TableRef[];
  where: string | null;
  /** Rows per chunk; null: the resumed run's own, or DEFAULT_CHUNK_SIZE. */
  chunkSize: number | null;
  /** Rows per second at most; null for as fast as it goes. */
  rate: number | null;
  /** Continue this run instead of starting one. */
  resume: string | null;
  /** Only these sinks get the run's events (the others' deliverers skip them); null: every sink. A resumed run keeps its own. */
  sinks?: SinkName[] | null;
}

export interface TablePlan {
  table: string;
  /** The planner's estimate of the rows to read (whole table, or under --where). */
  estimate: number;
  /** Rows already written by earlier attempts of this run. */
  done: number;
  state: 'done' | 'pending';
}

export interface ChunkReport {
  run: string;
  table: string;
  rows: number;
  tableRows: number;
  totalRows: number;
  snapshotLsn: string;
  ms: number;
}

export interface BackfillHooks {
  /** `settings`: the sinks the run is for (null: all) and the rate it goes at, a resumed run's own unless overridden. */
  onStart?(run: string, resumed: boolean, tables: TablePlan[], settings: RunSettings): void;
  onChunk?(report: ChunkReport): void;
  onTableDone?(table: string, rows: number): void;
}

export interface BackfillSummary {
  run: string;
  /** done: every table finished; stopped: asked to stop, resumable with the run id. */
  state: 'done' | 'stopped';
  resumed: boolean;
  tables: Array<{ table: string; rows: number; done: boolean }>;
  /** Rows written by this invocation (a resumed run's earlier rows not included). */
  rows: number;
  rowsTotal: number;
  chunks: number;
  seconds: number;
  rowsPerSecond: number;
  /** The sinks the run is for (null: every sink) and the rate it went at (null: unpaced). */
  sinks: string[] | null;
  rate: number | null;
}

export const DEFAULT_CHUNK_SIZE = 10_000;

/** Records of the next chunk held while the previous one commits (chunk-pipeline.ts); past this, reading waits. */
const MAX_WAITING_BYTES = 16 * 1024 * 1024;

/** A backfill failed part way; what is committed stays, and the message says how to resume. */
export class BackfillFailedError extends StreamctlError {
  constructor(run: string, cause: string) {
    super(`backfill run ${run} stopped on an error: ${cause}. What was committed stays; resume with: streamctl backfill --resume ${run}`, EXIT.RUNTIME);
  }
}

/**
 * `streamctl backfill`: the rows that already exist, into the changes topic as `read`
 * events, one chunk per Kafka transaction, each chunk read in an exact snapshot (see
 * snapshot.ts for why that keeps the sinks right while `stream` runs).
 *
 * A run is resumable at any instant: a chunk's rows and the progress past them commit
 * together, and a resumed run's producer fences the dead one, so Kafka aborts whatever it
 * left open. Event ids depend on the run and the row key only, so even a chunk that is
 * read again gets the ids it had. The next chunk is read while one commits (chunk-pipeline.ts);
 * the progress reported and checkpointed is only ever what Kafka committed.
 */
export class Backfill {
  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {}

  async run(options: BackfillOptions, signal: AbortSignal, hooks: BackfillHooks = {}): Promise<BackfillSummary> {
    const started = performance.now();
    const admin = checkpointAdmin(this.config.kafka, this.logger);
    const data = makePgClient(this.config.postgres, { options: SESSION_OPTIONS });
    let lock: pg.Client | null = null;
    let writer: BackfillProducer | null = null;
    const snapshots = new ChunkSnapshots(this.config.postgres, `${process.pid}_${randomBytes(3).toString('hex')}`);
    try {
      await admin.connect();
      await ensureTopics(admin, this.config);
      if (options.resume) {
        // Fence the run's earlier process before reading its progress: killed inside a
        // transaction, it left its checkpoint offset pending, and a read_committed offset read
        // waits on that until the transaction times out (crash:backfill met it: "fetchOffsets
        // timed out"). Fenced, nothing older can commit, so the read is the exact position.
        writer = backfillProducer(this.config, options.resume, this.logger);
        await writer.connect();
      }
      let progress = options.resume ? await this.resumable(admin, options) : null;
      const run = progress?.run ?? newRunId(new Date(), randomBytes(3).toString('hex'));
      const tableNames = progress ? progress.tables : options.tables.map(tableText);
      const refs = tableNames.map(parseTableName);
      if (!progress) {
        const settings = { sinks: options.sinks && options.sinks.length > 0 ? [...options.sinks] : null, rate: options.rate };
        progress = newProgress(run, this.config.pipeline.id, tableNames, options.where, options.chunkSize ?? DEFAULT_CHUNK_SIZE, new Date(), settings);
      }
      // A resumed run keeps its pace unless told another, and always its sinks.
      const rate = options.rate ?? progress.rate ?? null;
      const headers = targetSinksHeaders((progress.sinks ?? null) as SinkName[] | null);
      encodeProgress(progress); // fails now, not after the first chunk, when --where is too long to checkpoint

      await data.connect();
      data.on('error', () => {});
      await this.preflight(data);
      const infos = await describeTables(data, refs);

      lock = makePgClient(this.config.postgres, { options: SESSION_OPTIONS, application_name: `streamctl backfill ${run}` });
      await lock.connect();
      lock.on('error', () => {});
      await lockTables(lock, refs);

      if (!writer) {
        writer = backfillProducer(this.config, run, this.logger);
        await writer.connect();
      }
      const resumed = options.resume !== null;
      const registryClient = lock;
      const registry = new TypeRegistry((sql, params) => registryClient.query(sql, params));
      await snapshots.connect(`streamctl backfill ${run}`);

      const plans: TablePlan[] = [];
      for (let i = 0; i < infos.length; i++) {
        plans.push({
          table: tableNames[i]!,
          estimate: await estimateRows(data, refs[i]!, progress.where),
          done: progress.rows[i] ?? 0,
          state: i < progress.table_index ? 'done' : 'pending',
        });
      }
      hooks.onStart?.(run, resumed, plans, { sinks: progress.sinks ?? null, rate });
      const before = totalRows(progress);
      const limiter = rate === null ? null : new RateLimiter(rate);
      const chunkSize = RateLimiter.chunkSizeFor(options.chunkSize ?? progress.chunk_size, rate);

      const pipeline = new ChunkPipeline<BackfillProgress>(writer, MAX_WAITING_BYTES);
      /** What Kafka has committed; `progress` runs one chunk ahead of it while a commit is in flight. */
      let committed = progress;
      try {
        while (!isDone(progress) && !signal.aborted) {
          const info = infos[progress.table_index]!;
          if (limiter) {
            const wait = limiter.waitMs(performance.now());
            await sleepUnlessAborted(wait, signal);
            if (signal.aborted) break;
          }
          const chunkStarted = performance.now();
          const result = await this.chunk(info, progress, chunkSize, data, snapshots, pipeline, registry, run, headers);
          limiter?.record(result.rows, chunkStarted);
          progress = result.progress;
          const next = progress;
          await pipeline.commit(next, () => {
            committed = next;
            const i = result.tableIndex;
            if (result.rows > 0) {
              hooks.onChunk?.({
                run,
                table: tableNames[i]!,
                rows: result.rows,
                tableRows: next.rows[i] ?? 0,
                totalRows: totalRows(next),
                snapshotLsn: result.snapshotLsn,
                ms: performance.now() - chunkStarted,
              });
            }
            if (result.tableDone) hooks.onTableDone?.(tableNames[i]!, next.rows[i] ?? 0);
          });
        }
        await pipeline.settled();
      } catch (err) {
        // The commit in flight ends (or fails) before the connections close under it.
        await pipeline.settled().catch(() => {});
        if (isFenced(err)) throw new StreamctlError(`backfill run ${run} was taken over by another process (resumed elsewhere); this one stopped`, EXIT.RUNTIME);
        if (err instanceof StreamctlError) throw err;
        throw new BackfillFailedError(run, (err as Error).message);
      }

      const seconds = (performance.now() - started) / 1000;
      const rows = totalRows(committed) - before;
      const final = committed;
      return {
        run,
        state: isDone(final) ? 'done' : 'stopped',
        resumed,
        tables: final.tables.map((table, i) => ({ table, rows: final.rows[i] ?? 0, done: i < final.table_index })),
        rows,
        rowsTotal: totalRows(final),
        chunks: final.chunks,
        seconds,
        rowsPerSecond: seconds > 0 ? rows / seconds : 0,
        sinks: final.sinks ?? null,
        rate,
      };
    } finally {
      await snapshots.close();
      await writer?.disconnect();
      await lock?.end().catch(() => {});
      await data.end().catch(() => {});
      await admin.disconnect().catch(() => {});
    }
  }

  /** The progress of the run to resume, checked against what the operator asked for. */
  private async resumable(admin: import('../clients/rdkafka.js').Admin, options: BackfillOptions): Promise<BackfillProgress> {
    const run = options.resume!;
    const progress = await readProgress(admin, this.config, run);
    if (!progress) {
      throw new StreamctlError(`no backfill run '${run}' in pipeline ${this.config.pipeline.id} (it never committed a chunk, or the id is mistyped); start a new run instead`, EXIT.USAGE);
    }
    const asked = options.tables.map(tableText);
    if (asked.length > 0 && asked.join(',') !== progress.tables.join(',')) {
      throw new StreamctlError(`run ${run} backfills ${progress.tables.join(', ')}, not ${asked.join(', ')}; leave out --table to resume it as it was`, EXIT.USAGE);
    }
    const sinks = options.sinks && options.sinks.length > 0 ? [...options.sinks].sort().join(',') : null;
    if (sinks !== null && sinks !== [...(progress.sinks ?? [])].sort().join(',')) {
      throw new StreamctlError(`run ${run} is for ${progress.sinks ? `--sink ${progress.sinks.join(', ')}` : 'every sink'}; a resumed run keeps its sinks (leave out --sink)`, EXIT.USAGE);
    }
    if (options.where !== null && options.where !== progress.where) {
      throw new StreamctlError(`run ${run} was started with --where ${JSON.stringify(progress.where)}; a resumed run keeps its condition (leave out --where)`, EXIT.USAGE);
    }
    return progress;
  }

  private async preflight(client: pg.Client): Promise<void> {
    const settings = await readSettings(client);
    const problems = readinessProblems(settings, this.config.postgres.user).map((p) => `${p.problem}: ${p.fix}`);
    if (problems.length > 0) {
      throw new EnvironmentNotReadyError(`PostgreSQL is not ready for a backfill (${problems.length} problem${problems.length === 1 ? '' : 's'})`, problems);
    }
  }

  /**
   * One chunk: snapshot, keyset read streamed into the pipeline (its own Kafka transaction,
   * committed by the caller with the progress returned here).
   */
  private async chunk(
    info: TableInfo,
    progress: BackfillProgress,
    chunkSize: number,
    data: pg.Client,
    snapshots: ChunkSnapshots,
    pipeline: ChunkPipeline<BackfillProgress>,
    registry: TypeRegistry,
    run: string,
    headers: Record<string, string> | undefined,
  ): Promise<{ progress: BackfillProgress; rows: number; tableIndex: number; tableDone: boolean; snapshotLsn: string }> {
    const tableIndex = progress.table_index;
    const snapshotLsn = await snapshots.begin(data);
    /** The chunk's COPY while it is being read: a failure must read it to its end before ROLLBACK (drainCopy). */
    let copy: Readable | null = null;
    try {
      // The columns of SELECT * as they are in this snapshot (a column may have been added):
      // names and types, which COPY's output does not carry. The same transaction holds the
      // table's lock from here, so the COPY below has exactly these columns.
      const { fields } = await data.query({ text: `SELECT * FROM ${qualified(info.ref)} LIMIT 0`, rowMode: 'array', types: RAW_TEXT_TYPES });
      await registry.resolveForFields(fields);
      const keyIndexes = info.keyColumns.map((c) => fields.findIndex((f) => f.name === c));
      const reading = data.query(copyTo(chunkCopy(info.ref, info.keyColumns, progress.last_key, progress.where, chunkSize)));
      // Errors while reading come out of the loop below; one after a failure (the COPY being drained) must not crash the process.
      reading.on('error', () => {});
      copy = reading;
      const encoder = new ReadEventEncoder({
        run,
        table: info.ref,
        keyColumns: info.keyColumns,
        snapshotLsn,
        readAt: new Date().toISOString(),
        source: { pipeline: this.config.pipeline.id, db: this.config.postgres.database, kind: 'backfill', run },
        maxRecordBytes: this.config.kafka.maxRecordBytes,
      }, pipeline.arena);
      let rows = 0;
      let lastRaw: TextRow | null = null;
      for await (const batch of copyRowBatches(reading)) {
        for (const raw of batch) {
          const record = encoder.encode(decodeQueryRow(fields, raw, registry));
          // Over the size limit: a marker instead, so a resumed run never fails on the same row (oversize.ts).
          if (record.oversize) this.logger.error('row over kafka.maxRecordBytes: wrote an oversize marker in its place', oversizeLogFields(record.oversize.event, record.oversize.info));
          const waiting = pipeline.add(headers ? { key: record.key, value: record.value, headers } : { key: record.key, value: record.value });
          if (waiting) await waiting;
        }
        lastRaw = batch[batch.length - 1]!;
        rows += batch.length;
      }
      copy = null;
      await data.query('COMMIT');
      let next = progress;
      if (rows > 0) next = afterChunk(next, rows, keyIndexes.map((i) => lastRaw![i] as string), snapshotLsn, new Date());
      const tableDone = rows < chunkSize;
      if (tableDone) next = afterTable(next, new Date());
      return { progress: next, rows, tableIndex, tableDone, snapshotLsn };
    } catch (err) {
      await pipeline.abort();
      if (copy) await drainCopy(copy);
      await data.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }
}

