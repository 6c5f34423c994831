import type pg from 'pg';
import type { Pgoutput } from 'pg-logical-replication';
import { isRoutineRetry, kafkaClient as makeKafka } from '../clients/rdkafka.js';
import { checkpointAdmin, RestartSafeAdmin } from '../clients/restart-safe-admin.js';
import { makePgClient } from '../clients/postgres.js';
import { derivedNames } from '../config/names.js';
import type { Config } from '../config/types.js';
import type { ChangeEvent } from '../event/envelope.js';
import { oversizeLogFields } from '../event/oversize.js';
import { ChangeEncoder } from './change-encoder.js';
import { formatLsn, parseLsn } from '../event/lsn.js';
import { ensureTopics } from '../kafka/topics.js';
import { isFenced, TransactionTimedOutError } from '../kafka/retry.js';
import type { Logger } from '../logger.js';
import type { PipelineMetrics } from '../metrics.js';
import { backoffDelays } from '../backoff.js';
import { sleep, sleepUnlessAborted } from '../timeout.js';
import { SESSION_OPTIONS, TypeRegistry } from '../source/pg-types.js';
import { beginTransaction, eventsOf, type OpenTransaction, type SourceInfo } from './assembler.js';
import { isCovered, isTransactionCovered, type Checkpoint } from './checkpoint.js';
import { captureProducer, readCheckpoint, shownEventsTotal, type CaptureProducer } from './kafka-writer.js';
import { KafkaLostCommitError, VerifiedConfirms } from './verified-confirms.js';
import { startReadBacks } from './read-backs.js';
import { CheckpointUnreadableError, type CheckpointedTransaction } from '../kafka/checkpointed-producer.js';
import { ChunkPool, RecordBuffer } from './record-buffer.js';
import { ReplicationStream } from './replication-stream.js';
import { ensurePublication, ensureSlot, preflight } from './setup.js';
import { StreamctlError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { downOrJustBack, isConnectionError, outageFailure, outageRecovered, portsOf, serverOf, unreachableServer } from '../outages.js';
import { isBrokenTransaction, isKafkaBrokerChurn } from '../clients/librdkafka.js';

/**
 * Both results once both have settled, or the first failure (a's before b's). Never leaves
 * one running while the caller closes its connections (Promise.all would reject at the
 * first failure with the other still connecting).
 */
async function settleBoth<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
  return [x.value, y.value];
}

export class CaptureFencedError extends StreamctlError {
  constructor() {
    super('another capturer with the same pipeline id took over (this one was fenced); stopping without writing anything more', EXIT.RUNTIME);
    this.name = 'CaptureFencedError';
  }
}

export interface CaptureStats {
  eventsWritten: number;
  transactionsCommitted: number;
  checkpoint: Checkpoint | null;
}

interface Batch {
  /** The batch's records not yet produced (those read while no transaction of theirs is open). */
  records: RecordBuffer;
  /** Changes in the batch, produced or not, and their value bytes (what the batch limits count). */
  events: number;
  bytes: number;
  firstAt: number;
  counts: Map<string, number>;
  /** Last PostgreSQL transaction fully in the batch. */
  lastComplete: { commitLsn: bigint; endLsn: bigint } | null;
  /** The transaction in progress, when the batch holds only part of it. */
  partial: { commitLsn: bigint; position: number } | null;
}

/** How long this capturer's own replication connection may take to leave the slot after a failure (Capturer.heldByAnother). */
const OWN_SLOT_RELEASE_MS = 5000;

/** How often capture reads its checkpoint back while an LSN waits to be confirmed (./verified-confirms.ts). */
const READBACK_EVERY_MS = 1000;

/** Read-backs failing this long while capture goes on: said once (the slot holds WAL meanwhile). */
const READBACK_FAILING_MS = 60_000;

/** The read-back at a graceful stop waits this long at most. */
const LAST_READBACK_MS = 5000;

/** A checkpoint held back longer than this is the broker's stuck transaction, not a restart's coordinator loading. */
const HELD_BACK_MS = 60_000;

const emptyBatch = (pool: ChunkPool): Batch => ({ records: new RecordBuffer(pool), events: 0, bytes: 0, firstAt: 0, counts: new Map(), lastComplete: null, partial: null });

/**
 * While a Kafka commit or begin is in flight, the loop lets the event loop run after this
 * many messages: their steps answer through callbacks on this thread, and on a backlog the
 * loop takes message after message without awaiting (begin answered 11-17.5 ms after it
 * was called, against 2.5-4.3 with this: instrumented 1M-change bench runs of the loop before
 * it produced as it read, 200-264 transactions each).
 */
const YIELD_EVERY_WHILE_WAITING = 256;

/**
 * `stream --role capture`: PostgreSQL logical replication into Kafka, exactly once.
 *
 * Each Kafka transaction holds whole PostgreSQL transactions (or a safe part of a very big
 * one) plus the checkpoint that covers them. On start the checkpoint is read back and
 * every change it covers is skipped; PostgreSQL is told a position only after the Kafka
 * commit that covers it, so a crash at any instant re-reads at most what Kafka does not
 * have. Transient failures (Kafka or PostgreSQL gone) restart the loop from the
 * checkpoint, forever; being fenced by another capturer is final.
 */
export class Capturer {
  private readonly names;
  private readonly source: SourceInfo;
  private readonly progress;
  private stats: CaptureStats = { eventsWritten: 0, transactionsCommitted: 0, checkpoint: null };
  /** The Kafka commit in flight (see `loop`); it settles without throwing (failures go to the loop). */
  private inFlight: Promise<void> | null = null;
  /**
   * Restarts since the last successful commit: the backoff grows with it, and the first
   * commit after an outage resets it, so an outage late in a process's life is retried as
   * quickly as the first one was (it used to wait `kafka.retry.maxDelayMs` from then on).
   */
  private failures = 0;
  /** Since when each checkpoint read failed held back by Kafka (kafka/checkpointed-producer.ts CheckpointUnreadableError), and whether that was said. */
  private heldSince: number | null = null;
  private heldTold = false;
  /** The restart backoff: starts again from the initial delay after a commit (see `committed`). */
  private delays: () => number = () => 0;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly metrics: PipelineMetrics,
  ) {
    this.names = derivedNames(config);
    this.source = { pipeline: config.pipeline.id, db: config.postgres.database, slot: this.names.slot };
    this.progress = metrics.progress.watch('capture');
  }

  /**
   * Sets up PostgreSQL and Kafka; throws EnvironmentNotReadyError with every problem. The two
   * servers are set up side by side (nothing of one depends on the other): start-up counts
   * in every restart of a capturer, and one after the other it was a few round trips longer.
   */
  async setup(): Promise<void> {
    await settleBoth(this.setupPostgres(), this.setupKafka());
  }

  private async setupPostgres(): Promise<void> {
    const client = makePgClient(this.config.postgres);
    await client.connect();
    try {
      const setup = { slot: this.names.slot, publication: this.names.publication, tables: this.config.postgres.tables, user: this.config.postgres.user };
      await preflight(client, setup);
      const publication = await ensurePublication(client, setup);
      const slot = await ensureSlot(client, this.names.slot);
      this.logger.info('postgres ready', {
        publication: `${this.names.publication} (${publication})`,
        slot: `${this.names.slot} (${slot.created ? 'created' : 'exists'})`,
        confirmed_flush_lsn: slot.confirmedFlushLsn,
      });
    } finally {
      await client.end().catch(() => {});
    }
  }

  private async setupKafka(): Promise<void> {
    const admin = makeKafka(this.config.kafka, this.logger).admin();
    await admin.connect();
    try {
      const created = await ensureTopics(admin, this.config);
      if (created.length > 0) this.logger.info('kafka topics created', { topics: created.join(',') });
    } finally {
      await admin.disconnect();
    }
  }

  /** Runs until `signal` aborts (then finishes the open batch and returns). */
  async run(signal: AbortSignal): Promise<CaptureStats> {
    this.failures = 0;
    this.delays = backoffDelays(this.config.kafka.retry);
    let starting = true;
    while (!signal.aborted) {
      try {
        await this.runOnce(signal, starting);
        return this.stats;
      } catch (err) {
        if (err instanceof CaptureFencedError || isFenced(err)) throw new CaptureFencedError();
        if (err instanceof StreamctlError) throw err;
        starting = false;
        this.failures++;
        this.progress.work(); // the same position will be tried again: work with no progress yet
        const delay = this.delays();
        const fields = { error: (err as Error).message, attempt: this.failures, retry_in_ms: delay };
        // Kafka answers but holds the checkpoint back: no outage (the broker answers; told as one
        // it became three short outages in a server-restarts run, each ended by the monitor's
        // next answer from Kafka). For a while that is a restart's (a group coordinator still
        // loading): retried at debug. Past HELD_BACK_MS it is the broker's own stuck transaction:
        // said once, with the fix, and retried quietly.
        if (err instanceof CheckpointUnreadableError) {
          this.heldSince ??= Date.now();
          const long = Date.now() - this.heldSince > HELD_BACK_MS;
          if (long && !this.heldTold) this.logger.warn('capture cannot start: its checkpoint is held back by Kafka; retrying', fields);
          else this.logger.debug('capture: the checkpoint is held back', fields);
          this.heldTold ||= long;
          await sleepUnlessAborted(delay, signal);
          continue;
        }
        this.heldSince = null;
        // A server gone away (a restart, a full disk): one line for the whole outage (outages.ts).
        const server =
          serverOf(err, { postgres: this.config.postgres.port, kafka: portsOf(this.config.kafka.brokers) }) ??
          // A cut connection that names no server: the one that refuses now, else PostgreSQL
          // (Kafka's client names its errors, so a bare socket error here is node-postgres's).
          (isConnectionError(err) ? ((await unreachableServer({ postgres: this.config.postgres, kafka: this.config.kafka.brokers })) ?? 'postgres') : undefined) ??
          // The broker's own answer for a coordinator restarting or moving (NOT_COORDINATOR on the
          // checkpoint's offsets, 4 s after the broker came back, failed one server-restarts run of
          // ~25 with a warning beside the outage's line): Kafka's restart, told as its outage.
          (isKafkaBrokerChurn(err) ? 'kafka' : undefined);
        if (err instanceof KafkaLostCommitError) this.logger.error('Kafka lost a commit it had answered; restarting capture from the checkpoint Kafka shows', fields);
        else if (server) outageFailure(this.logger, server, err, 'capture', { attempt: this.failures, retry_in_ms: delay });
        else if (isRoutineRetry((err as Error).message, {})) this.logger.debug('capture restarting after a routine broker answer', fields);
        // A broker restart can end the transaction that was open across it (INVALID_TXN_STATE, a
        // fatal producer): expected on the way back, so told as part of that outage.
        else if ((isBrokenTransaction(err) || err instanceof TransactionTimedOutError) && downOrJustBack('kafka')) this.logger.info('the Kafka restart ended the open transaction; restarting from the last checkpoint', fields);
        else this.logger.warn('capture interrupted, restarting from the last checkpoint', fields);
        await sleepUnlessAborted(delay, signal);
      }
    }
    return this.stats;
  }

  /** Streaming again after a restart: both servers answered (the slot is open and the checkpoint read). */
  private streaming(askedAt: number): void {
    if (this.heldTold) this.logger.info('capture read its checkpoint again: streaming');
    this.heldTold = false;
    this.heldSince = null;
    outageRecovered(this.logger, 'postgres', 'capture', askedAt);
    outageRecovered(this.logger, 'kafka', 'capture', askedAt);
  }

  /** A Kafka transaction committed: the backoff starts from the beginning at the next failure. */
  private committed(askedAt: number): void {
    this.failures = 0;
    this.delays = backoffDelays(this.config.kafka.retry);
    outageRecovered(this.logger, 'kafka', 'capture', askedAt);
  }

  /**
   * `takeOver`: only a capturer that is starting may take the slot from another session
   * (the operator started it to replace the old one). One restarting after a failure that
   * finds the slot held has been replaced itself: taking it back would fence the new
   * capturer in turn, and the two would take turns forever.
   */
  private async runOnce(signal: AbortSignal, takeOver: boolean): Promise<void> {
    const writer = captureProducer(this.config, this.logger);
    const admin = checkpointAdmin(this.config.kafka, this.logger);
    // Reads the checkpoint back before PostgreSQL is told an LSN (./verified-confirms.ts): the
    // consumer's committed(), a read_committed fetch that waits while offsets are pending.
    const readback = new RestartSafeAdmin(this.config.kafka, this.logger, 0);
    const pgAdmin = makePgClient(this.config.postgres, { options: SESSION_OPTIONS });
    let stream: ReplicationStream | null = null;
    let lagTimer: NodeJS.Timeout | undefined;
    const attemptStarted = Date.now(); // what answers this attempt can end an outage that began before it
    try {
      const postgres = (async () => {
        await pgAdmin.connect();
        pgAdmin.on('error', () => {});
        if (!takeOver && (await this.heldByAnother(pgAdmin))) throw new CaptureFencedError();
      })();
      // A restarting capturer must know the slot is not held by its replacement before it
      // fences anyone; one that is starting may connect to both servers at once.
      if (!takeOver) await postgres;
      const kafka = (async () => {
        await Promise.all([admin.connect(), readback.connect()]);
        await writer.connect(); // fences any older capturer of this pipeline
        return readCheckpoint(admin, this.config);
      })();
      const [checkpoint] = await settleBoth(kafka, postgres);
      this.stats.checkpoint = checkpoint;
      await this.takeOverSlot(pgAdmin);
      const slot = await ensureSlot(pgAdmin, this.names.slot);
      this.logger.info('capture starting', {
        slot: this.names.slot,
        confirmed_flush_lsn: slot.confirmedFlushLsn,
        checkpoint: checkpoint ? `${checkpoint.lsn}${checkpoint.complete ? '' : `#${checkpoint.position}`}` : 'none',
      });
      const registry = new TypeRegistry((sql, params) => pgAdmin.query(sql, params));
      stream = new ReplicationStream(this.config.postgres, this.names.slot, this.names.publication);
      await stream.start(parseLsn(slot.confirmedFlushLsn));
      this.streaming(attemptStarted);
      lagTimer = setInterval(() => void this.measureLag(pgAdmin), this.config.capture.slotLagIntervalMs);
      void this.measureLag(pgAdmin);
      await this.loop(stream, writer, registry, checkpoint, signal, () => shownEventsTotal(readback, this.config));
    } finally {
      clearInterval(lagTimer);
      // On a failure, let the commit in flight finish (or fail) before the connections close under it.
      await this.inFlight;
      this.inFlight = null;
      await stream?.stop();
      await writer.disconnect();
      await Promise.all([admin.disconnect().catch(() => {}), readback.disconnect()]);
      await pgAdmin.end().catch(() => {});
    }
  }

  /**
   * A slot serves one connection at a time. If a zombie capturer still holds it, it was
   * just fenced in Kafka (it can never commit again), so ending its PostgreSQL session is
   * safe and lets this one take over at once.
   */
  private async slotHolder(client: pg.Client): Promise<number | null> {
    const { rows } = await client.query<{ active_pid: number | null }>('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [this.names.slot]);
    return rows[0]?.active_pid ?? null;
  }

  /**
   * The slot is held by another session, for longer than this capturer's own last connection
   * takes to go away. A restart comes right after a failure, and PostgreSQL may not have
   * ended that connection's walsender yet: stuck-status, under load, saw a capturer take its
   * own lingering connection for a replacement and stop as fenced (exit 1). A replacement
   * holds the slot for good, so waiting a few seconds does not change that verdict.
   */
  private async heldByAnother(client: pg.Client): Promise<boolean> {
    const deadline = Date.now() + OWN_SLOT_RELEASE_MS;
    for (;;) {
      if ((await this.slotHolder(client)) === null) return false;
      if (Date.now() > deadline) return true;
      await sleep(200);
    }
  }

  private async takeOverSlot(client: pg.Client): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const pid = await this.slotHolder(client);
      if (!pid) return;
      if (attempt === 0) this.logger.warn('replication slot held by another session (a fenced capturer); ending it', { pid });
      await client.query('SELECT pg_terminate_backend($1)', [pid]);
      await sleep(100);
    }
    throw new Error(`replication slot ${this.names.slot} is still held by another session`);
  }

  private async measureLag(client: pg.Client): Promise<void> {
    try {
      const { rows } = await client.query<{ lag: string | null }>(
        'SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1',
        [this.names.slot],
      );
      if (rows[0]?.lag) this.metrics.slotLagBytes.set({ slot: this.names.slot }, Number(rows[0].lag));
    } catch {
      // A lag reading missed is not worth failing capture for; the next one will tell.
    }
  }

  /**
   * The capture loop, pipelined: a full batch is committed and, while that transaction
   * commits (tens of milliseconds of round trips), the loop goes on reading, decoding and
   * encoding the next batch, held in a RecordBuffer. Once that commit is done the next
   * batch's transaction begins, what was held is produced, and the rest of the batch goes
   * to Kafka as it is encoded, so the broker takes the batch while it is being read instead
   * of all of it at the commit (which then waits only for the last records). At most one
   * transaction is open (Kafka allows one per producer), and a batch's records only ever go
   * into its own. PostgreSQL is still told an LSN only once the commit covering it is done:
   * the batch's own LSN in the commit's callback, and any LSN that needed no Kafka write
   * (a skipped or empty transaction, a keepalive) is held back until the commit in flight
   * before it is done, so confirmations stay in LSN order.
   */
  private async loop(stream: ReplicationStream, writer: CaptureProducer, registry: TypeRegistry, start: Checkpoint | null, signal: AbortSignal, readShown: () => Promise<number>): Promise<void> {
    const { maxBatchEvents, maxBatchBytes, lingerMs } = this.config.capture;
    /** The checkpoint of the last batch handed to Kafka (committed or in flight). */
    let checkpoint = start;
    let eventsTotal = start?.events_total ?? 0;
    const pool = new ChunkPool();
    let batch = emptyBatch(pool);
    let tx: OpenTransaction | null = null;
    let skipTx = false;
    /** The checkpoint ends inside this transaction: only then can a single change of it be covered. */
    let partlyCovered = false;
    let commitFailure: unknown = null;
    /** The transaction of the batch being read, once begun; `opening` while it begins. */
    let open: CheckpointedTransaction<Checkpoint> | null = null;
    let opening: Promise<void> | null = null;
    let sinceYield = 0;
    const verified = new VerifiedConfirms(start?.events_total ?? 0, (lsn) => this.confirm(stream, lsn));
    const readbacks = startReadBacks({
      verified,
      readShown,
      lost: (err) => {
        commitFailure ??= err;
        stream.interrupt();
      },
      logger: this.logger,
      kafkaAway: () => downOrJustBack('kafka'),
      everyMs: READBACK_EVERY_MS,
      failingMs: READBACK_FAILING_MS,
      lastMs: LAST_READBACK_MS,
    });
    const encoder = new ChangeEncoder(this.config.kafka.maxRecordBytes);

    const settled = async (): Promise<void> => {
      if (this.inFlight) await this.inFlight;
      if (commitFailure !== null) throw commitFailure;
    };

    /** Begins the next batch's transaction once the one before is committed; the loop produces into it when it is open. */
    const openNext = (): void => {
      if (open !== null || opening !== null || this.inFlight !== null || commitFailure !== null) return;
      opening = writer.begin().then(
        (t) => {
          open = t;
          opening = null;
          stream.interrupt();
        },
        (err: unknown) => {
          commitFailure ??= err;
          opening = null;
          stream.interrupt();
        },
      );
    };

    /** The held records of the batch into its open transaction. Copied into the client's queue: their buffers go back to the pool. */
    const drain = async (): Promise<void> => {
      const t = open!;
      const held = batch.records;
      if (held.length === 0) return;
      for (const record of held.records()) {
        const waiting = t.add(record);
        if (waiting) await waiting;
      }
      held.release();
    };

    const commit = (t: CheckpointedTransaction<Checkpoint>, committing: Batch, next: Checkpoint): Promise<void> => {
      const started = performance.now();
      const askedAt = Date.now();
      const count = committing.events;
      return t.commit(next).then(
        () => {
          this.metrics.captureCommitSeconds.observe((performance.now() - started) / 1000);
          this.metrics.captureTransactions.inc();
          this.metrics.captureBatchSize.observe(count);
          for (const [label, n] of committing.counts) {
            const [table, op] = label.split('|') as [string, string];
            this.metrics.captureEvents.inc({ table, op }, n);
          }
          this.stats = { eventsWritten: this.stats.eventsWritten + count, transactionsCommitted: this.stats.transactionsCommitted + 1, checkpoint: next };
          this.inFlight = null;
          this.committed(askedAt);
          this.progress.progress(`checkpoint ${next.lsn}`);
          // PostgreSQL may forget the WAL of the transactions this commit covers once Kafka shows it (read-backs).
          verified.committed(committing.lastComplete?.endLsn ?? null, next.events_total);
          stream.interrupt();
        },
        (err: unknown) => {
          // Nothing more is confirmed: what waits needs this checkpoint, which Kafka never shows.
          commitFailure = err;
          this.inFlight = null;
          stream.interrupt();
        },
      );
    };

    /** Commits the batch once the transaction before it is committed; returns without waiting for this one. */
    const flush = async (): Promise<void> => {
      if (batch.events === 0) return;
      await settled();
      openNext();
      if (opening !== null) await opening;
      if (commitFailure !== null) throw commitFailure;
      await drain();
      const next: Checkpoint = batch.partial
        ? {
            pipeline: this.config.pipeline.id,
            lsn: formatLsn(batch.partial.commitLsn),
            position: batch.partial.position,
            complete: false,
            confirmed_end_lsn: batch.lastComplete ? formatLsn(batch.lastComplete.endLsn) : (checkpoint?.confirmed_end_lsn ?? null),
            written_at: new Date().toISOString(),
            events_total: eventsTotal + batch.events,
          }
        : {
            pipeline: this.config.pipeline.id,
            lsn: formatLsn(batch.lastComplete!.commitLsn),
            position: null,
            complete: true,
            confirmed_end_lsn: formatLsn(batch.lastComplete!.endLsn),
            written_at: new Date().toISOString(),
            events_total: eventsTotal + batch.events,
          };
      eventsTotal = next.events_total;
      checkpoint = next;
      verified.handedOver(next.events_total);
      const t = open!;
      open = null;
      this.inFlight = commit(t, batch, next);
      batch = emptyBatch(pool);
    };

    /** Adds the change to the batch: into its transaction when that is open and holds back nothing, else held. A promise when the client's queue is full. */
    const add = (event: ChangeEvent): Promise<void> | void => {
      // Over the size limit: a marker instead, so one huge row never stalls capture (oversize.ts).
      const { key, value, bytes, oversize, label } = encoder.encode(event);
      if (oversize) {
        this.metrics.oversizeEvents.inc({ table: `${event.schema}.${event.table}` });
        this.logger.error('row over kafka.maxRecordBytes: wrote an oversize marker in its place', oversizeLogFields(event, oversize));
      }
      this.progress.work();
      if (batch.events === 0) batch.firstAt = performance.now();
      batch.events++;
      batch.bytes += bytes;
      batch.counts.set(label, (batch.counts.get(label) ?? 0) + 1);
      if (open !== null && batch.records.length === 0) return open.add({ key, value });
      batch.records.append(key, value, bytes);
    };

    try {
      while (!signal.aborted) {
        if (commitFailure !== null) throw commitFailure;
        if (batch.events > 0) {
          openNext();
          if (open !== null && batch.records.length > 0) await drain();
        }
        if ((this.inFlight !== null || opening !== null) && ++sinceYield >= YIELD_EVERY_WHILE_WAITING) {
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        const lingerLeft = batch.events > 0 ? Math.max(0, lingerMs - (performance.now() - batch.firstAt)) : 1000;
        // A batch past its linger goes as soon as the transaction before it is done; until
        // then it keeps filling (the commit's callback interrupts the wait below).
        if (batch.events > 0 && lingerLeft === 0 && tx === null && this.inFlight === null) {
          await flush();
          continue;
        }
        // What is already read is taken without awaiting (see ReplicationStream.poll); a commit's
        // callback runs between items only when the loop waits, which it does whenever nothing is read.
        const item = stream.poll() ?? (await stream.next(tx === null && lingerLeft > 0 ? lingerLeft : 1000));
        if (item === null) {
          if (stream.isEnded) throw new Error('the replication stream ended');
          continue;
        }
        if (item.kind === 'keepalive') {
          // Every change before this keepalive has been handled; with nothing pending, the
          // slot may move up to here, so it does not hold WAL written for other tables.
          if (tx === null && batch.events === 0) verified.unwritten(item.walEnd);
          continue;
        }
        const message: Pgoutput.Message = item.message;
        switch (message.tag) {
          case 'begin':
            tx = beginTransaction(message);
            skipTx = isTransactionCovered(checkpoint, tx.commitLsn);
            // Decided once per transaction (not parsing the checkpoint's LSN for every change): a
            // checkpoint written later in this loop only covers changes of it already added.
            partlyCovered = !skipTx && checkpoint !== null && parseLsn(checkpoint.lsn) === tx.commitLsn;
            break;
          case 'relation':
            await registry.resolveForRelation(message);
            break;
          case 'commit': {
            if (!tx) throw new Error('COMMIT without BEGIN in the replication stream');
            const endLsn = message.commitEndLsn ? parseLsn(message.commitEndLsn) : tx.commitLsn;
            if (batch.events === 0) {
              // Nothing of it is waiting for Kafka (skipped, or no published change).
              verified.unwritten(endLsn);
            } else {
              batch.lastComplete = { commitLsn: tx.commitLsn, endLsn };
              batch.partial = null;
              if (batch.events >= maxBatchEvents || batch.bytes >= maxBatchBytes) await flush();
            }
            tx = null;
            break;
          }
          case 'insert':
          case 'update':
          case 'delete':
          case 'truncate': {
            if (!tx) throw new Error(`${message.tag} outside a transaction in the replication stream`);
            for (const event of eventsOf(message, tx, registry, this.source)) {
              if (skipTx || (partlyCovered && isCovered(checkpoint, tx.commitLsn, event.position!))) continue;
              const waiting = add(event);
              if (waiting) await waiting;
              // Moved along rather than made again for every change: the batch's own, read only when it is sent.
              if (batch.partial) {
                batch.partial.commitLsn = tx.commitLsn;
                batch.partial.position = event.position!;
              } else batch.partial = { commitLsn: tx.commitLsn, position: event.position! };
              // A transaction too big for one batch is split here; the checkpoint records the position.
              if (batch.events >= maxBatchEvents || batch.bytes >= maxBatchBytes) await flush();
            }
            break;
          }
          default:
            break; // type, origin, logical messages: nothing to write
        }
      }
      // Graceful stop: commit what is read (a partial transaction is safe: the checkpoint says where it stopped).
      await flush();
      await settled();
      // What the last commits cover is confirmed once Kafka shows them, if it answers soon.
      await readbacks.last();
      if (commitFailure !== null) throw commitFailure;
    } finally {
      readbacks.stop();
      // A failure with a batch's transaction open: aborted here (best effort; the next capturer's start fences it anyway).
      if (opening !== null) await opening;
      const left = open as CheckpointedTransaction<Checkpoint> | null;
      open = null;
      if (left !== null) await left.abort().catch(() => {});
    }
  }

  /** Called only when nothing read is waiting for Kafka, so confirming is progress too (health/progress.ts). */
  private confirm(stream: ReplicationStream, lsn: bigint): void {
    if (lsn <= stream.confirmedFlush) return;
    stream.sendStatus(lsn);
    this.progress.progress(`lsn ${formatLsn(lsn)}`);
    this.metrics.confirmedLsn.set(Number(lsn));
  }
}
