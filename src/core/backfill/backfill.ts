import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import QueryStream from 'pg-query-stream';
import { checkpointAdmin } from '../clients/restart-safe-admin.js';
import { makePgClient } from '../clients/postgres.js';
import type { Config } from '../config/types.js';
import { ENVELOPE_VERSION, type ChangeEvent } from '../event/envelope.js';
import { backfillEventId } from '../event/identity.js';
import { encodeEvent, oversizeLogFields } from '../event/oversize.js';
import { readinessProblems, readSettings } from '../postgres/readiness.js';
import { ensureTopics } from '../kafka/topics.js';
import { isFenced } from '../kafka/retry.js';
import type { Logger } from '../logger.js';
import { EnvironmentNotReadyError, StreamctlError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { sleepUnlessAborted } from '../timeout.js';
import { decodeQueryRow, RAW_TEXT_TYPES, SESSION_OPTIONS, TypeRegistry } from '../source/pg-types.js';
import { backfillProducer, readProgress, type BackfillProducer } from './kafka-writer.js';
import type { CheckpointedTransaction } from '../kafka/checkpointed-producer.js';
import { lockTables } from './lock.js';
import { chunkQuery, keyOf, parseTableName, qualified, tableText, type TableRef } from './plan.js';
import { afterChunk, afterTable, encodeProgress, isDone, newProgress, newRunId, totalRows, type BackfillProgress, type RunSettings } from './progress.js';
import type { SinkName } from '../sinks/contract.js';
import { targetSinksHeaders } from '../event/targets.js';
import { RateLimiter } from './rate-limiter.js';
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
 * read again gets the ids it had.
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

      writer = backfillProducer(this.config, run, this.logger);
      await writer.connect(); // fences an earlier process of this run
      // Read again now that no older process can commit: this is the exact position.
      if (options.resume) progress = (await readProgress(admin, this.config, run)) ?? progress;
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

      try {
        while (!isDone(progress) && !signal.aborted) {
          const info = infos[progress.table_index]!;
          if (limiter) {
            const wait = limiter.waitMs(performance.now());
            await sleepUnlessAborted(wait, signal);
            if (signal.aborted) break;
          }
          const chunkStarted = performance.now();
          const result = await this.chunk(info, progress, chunkSize, data, snapshots, writer, registry, run, headers);
          limiter?.record(result.rows, chunkStarted);
          progress = result.progress;
          if (result.rows > 0) {
            const i = result.tableIndex;
            hooks.onChunk?.({
              run,
              table: tableNames[i]!,
              rows: result.rows,
              tableRows: progress.rows[i] ?? 0,
              totalRows: totalRows(progress),
              snapshotLsn: result.snapshotLsn,
              ms: performance.now() - chunkStarted,
            });
          }
          if (result.tableDone) hooks.onTableDone?.(tableNames[result.tableIndex]!, progress.rows[result.tableIndex] ?? 0);
        }
      } catch (err) {
        if (isFenced(err)) throw new StreamctlError(`backfill run ${run} was taken over by another process (resumed elsewhere); this one stopped`, EXIT.RUNTIME);
        if (err instanceof StreamctlError) throw err;
        throw new BackfillFailedError(run, (err as Error).message);
      }

      const seconds = (performance.now() - started) / 1000;
      const rows = totalRows(progress) - before;
      const final = progress;
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

  /** One chunk: snapshot, keyset read streamed into one Kafka transaction with the progress past it. */
  private async chunk(
    info: TableInfo,
    progress: BackfillProgress,
    chunkSize: number,
    data: pg.Client,
    snapshots: ChunkSnapshots,
    writer: BackfillProducer,
    registry: TypeRegistry,
    run: string,
    headers: Record<string, string> | undefined,
  ): Promise<{ progress: BackfillProgress; rows: number; tableIndex: number; tableDone: boolean; snapshotLsn: string }> {
    const tableIndex = progress.table_index;
    const { schema, table } = info.ref;
    const snapshotLsn = await snapshots.begin(data);
    let tx: CheckpointedTransaction<BackfillProgress> | null = null;
    try {
      // Types of the columns as they are in this snapshot (a column may have been added).
      const { rows: typeRows } = await data.query<{ oid: number }>(
        'SELECT atttypid::int AS oid FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped',
        [qualified(info.ref)],
      );
      await registry.resolve(typeRows.map((r) => r.oid));
      tx = await writer.begin();
      const query = chunkQuery(info.ref, info.keyColumns, progress.last_key, progress.where, chunkSize);
      const stream = data.query(new QueryStream(query.text, query.values, { batchSize: 1000, rowMode: 'array', types: RAW_TEXT_TYPES } as never));
      const readAt = new Date().toISOString();
      const source = { pipeline: this.config.pipeline.id, db: this.config.postgres.database, kind: 'backfill' as const, run };
      let rows = 0;
      let lastKey: string[] | null = null;
      let keyIndexes: number[] | null = null;
      let fields: Array<{ name: string; dataTypeID: number }> | null = null;
      for await (const raw of stream as AsyncIterable<unknown[]>) {
        if (fields === null) {
          fields = (stream as unknown as { _result: { fields: Array<{ name: string; dataTypeID: number }> } })._result.fields;
          keyIndexes = info.keyColumns.map((c) => fields!.findIndex((f) => f.name === c));
        }
        const after = decodeQueryRow(fields, raw, registry);
        const key = keyOf(after, info.keyColumns);
        const event: ChangeEvent = {
          id: backfillEventId(run, schema, table, key),
          version: ENVELOPE_VERSION,
          op: 'read',
          schema,
          table,
          key,
          before: null,
          after,
          lsn: snapshotLsn,
          xid: null,
          commit_ts: readAt,
          source,
        };
        // Over the size limit: a marker instead, so a resumed run never fails on the same row (oversize.ts).
        const record = encodeEvent(event, this.config.kafka.maxRecordBytes);
        if (record.oversize) this.logger.error('row over kafka.maxRecordBytes: wrote an oversize marker in its place', oversizeLogFields(event, record.oversize));
        await tx.add(headers ? { key: record.key, value: record.value, headers } : { key: record.key, value: record.value });
        lastKey = keyIndexes!.map((i) => raw[i] as string);
        rows++;
      }
      await data.query('COMMIT');
      let next = progress;
      if (rows > 0) next = afterChunk(next, rows, lastKey!, snapshotLsn, new Date());
      const tableDone = rows < chunkSize;
      if (tableDone) next = afterTable(next, new Date());
      await tx.commit(next);
      tx = null;
      return { progress: next, rows, tableIndex, tableDone, snapshotLsn };
    } catch (err) {
      await tx?.abort();
      await data.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }
}

