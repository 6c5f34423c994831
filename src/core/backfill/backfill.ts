import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type pg from 'pg';
import QueryStream from 'pg-query-stream';
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
import { chunkQuery, parseTableName, qualified, tableText, type TableRef } from './plan.js';
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

/**
 * The rows an object-mode stream has buffered, a batch at a time: one await per batch of
 * pg-query-stream's cursor (it reads the next while this one is handled) instead of one
 * per row, which for-await over the stream costs.
 */
async function* batchesOf<T>(stream: Readable): AsyncGenerator<T[]> {
  // Kept from the start: an error while the consumer handles a batch has nobody else to go to.
  let failure: unknown = null;
  const onError = (err: unknown): void => {
    failure ??= err;
  };
  stream.on('error', onError);
  try {
    for (;;) {
      if (failure !== null) throw failure;
      const batch: T[] = [];
      for (let row = stream.read() as T | null; row !== null; row = stream.read() as T | null) batch.push(row);
      if (batch.length > 0) {
        yield batch;
        continue;
      }
      if (stream.readableEnded) return;
      if (stream.destroyed) throw failure ?? new Error('the query stream closed before its end');
      // 'readable' comes with more rows or at the end (read() then returns null and 'end' follows); an error closes the stream.
      await new Promise<void>((resolve) => {
        const done = (): void => {
          stream.off('readable', done).off('end', done).off('close', done);
          resolve();
        };
        stream.on('readable', done).on('end', done).on('close', done);
      });
    }
  } finally {
    stream.off('error', onError);
  }
}

/**
 * Rows per cursor read (pg-query-stream reads the next batch while one is handled). Small
 * enough that a batch dies young: with 1,000 its rows outlived two scavenges and filled the
 * old generation (300k rows: peak RSS 198 MiB, 2.2 CPU s per 100k rows; 250: 150 MiB,
 * 1.95-2.1; 100: 132 MiB, 2.3, the round trips showing).
 */
const READ_BATCH_ROWS = 250;

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
    try {
      // Types of the columns as they are in this snapshot (a column may have been added).
      const { rows: typeRows } = await data.query<{ oid: number }>(
        'SELECT atttypid::int AS oid FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped',
        [qualified(info.ref)],
      );
      await registry.resolve(typeRows.map((r) => r.oid));
      const query = chunkQuery(info.ref, info.keyColumns, progress.last_key, progress.where, chunkSize);
      const stream = data.query(new QueryStream(query.text, query.values, { batchSize: READ_BATCH_ROWS, rowMode: 'array', types: RAW_TEXT_TYPES } as never));
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
      let lastRaw: unknown[] | null = null;
      let keyIndexes: number[] | null = null;
      let fields: Array<{ name: string; dataTypeID: number }> | null = null;
      for await (const batch of batchesOf<unknown[]>(stream)) {
        if (fields === null) {
          fields = (stream as unknown as { _result: { fields: Array<{ name: string; dataTypeID: number }> } })._result.fields;
          keyIndexes = info.keyColumns.map((c) => fields!.findIndex((f) => f.name === c));
        }
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
      await data.query('COMMIT');
      let next = progress;
      if (rows > 0) next = afterChunk(next, rows, keyIndexes!.map((i) => lastRaw![i] as string), snapshotLsn, new Date());
      const tableDone = rows < chunkSize;
      if (tableDone) next = afterTable(next, new Date());
      return { progress: next, rows, tableIndex, tableDone, snapshotLsn };
    } catch (err) {
      await pipeline.abort();
      await data.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }
}

