import type pg from 'pg';
import { makeReplicationClient } from '../clients/postgres.js';
import type { PostgresConfig } from '../config/types.js';
import { EnvironmentNotReadyError } from '../errors.js';
import { SESSION_OPTIONS } from '../source/pg-types.js';

/**
 * Exact snapshots for chunks: the consistency method of backfill.
 *
 * Each chunk is read in a snapshot exported by a temporary logical replication slot
 * (CREATE_REPLICATION_SLOT ... TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT). PostgreSQL
 * builds that snapshot so that it sees exactly the transactions whose commit record lies
 * before the slot's consistent point C, and a slot decoding from C sees exactly the others:
 * C splits history with no race. (A plain snapshot next to pg_current_wal_lsn() does
 * not: a transaction can have written its commit record and not yet be visible.)
 *
 * So a read of the chunk is the row as of C, and carries C as its version (see
 * eventVersion): every change committed before C is already in it and sorts older, every
 * change committed at or after C sorts newer, and the sinks' version check keeps the
 * newer of the two whichever arrives first. No watermark writes, no window to reconcile
 * against the stream, and it holds whether or not `stream` is running.
 *
 * The slot is dropped as soon as the snapshot is imported. Creating it waits for
 * transactions already running to finish (as creating any logical slot does: 12-200 ms a
 * chunk on the shared test machine, as long as reading a third of the chunk), so the next
 * chunk's slot is created while this chunk is read (`begin` prepares it): only that slot
 * exists meanwhile, holding back at most one chunk's reading time of WAL. Its consistent
 * point comes after this chunk's, so chunks still read history in order, and each chunk's
 * reads are exact as of its own point whatever happens between the two.
 */
export class ChunkSnapshots {
  private replication: pg.Client | null = null;
  private count = 0;
  /** The next chunk's slot, being created on the replication connection (a failure is kept for `begin`). */
  private next: Promise<ExportedSnapshot | Error> | null = null;

  /** `tag` makes slot names unique to this process: [a-z0-9_], up to 40 characters. */
  constructor(
    private readonly config: PostgresConfig,
    private readonly tag: string,
  ) {
    if (!/^[a-z0-9_]{1,40}$/.test(tag)) throw new RangeError(`snapshot slot tag must be 1-40 of [a-z0-9_], got '${tag}'`);
  }

  async connect(applicationName: string): Promise<void> {
    const client = makeReplicationClient(this.config, applicationName, SESSION_OPTIONS);
    client.on('error', () => {});
    await client.connect();
    this.replication = client;
  }

  /**
   * Opens a REPEATABLE READ, READ ONLY transaction on `reader` in a fresh exact snapshot
   * and returns its consistent point. The caller ends the transaction. The next chunk's
   * snapshot is being made from here on.
   */
  async begin(reader: pg.Client): Promise<string> {
    const replication = this.replication;
    if (!replication) throw new Error('chunk snapshots are not connected');
    const prepared = this.next ?? this.create(replication);
    this.next = null;
    const created = await prepared;
    if (created instanceof Error) throw created;
    try {
      if (!/^[0-9A-F-]+$/i.test(created.snapshot_name)) throw new Error(`unexpected snapshot name '${created.snapshot_name}'`);
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await reader.query(`SET TRANSACTION SNAPSHOT '${created.snapshot_name}'`);
    } finally {
      // Any command on the replication connection ends the export; the import is done.
      await replication.query(`DROP_REPLICATION_SLOT ${created.slot}`);
    }
    this.next = this.create(replication);
    return created.consistent_point;
  }

  /** A temporary slot exporting its snapshot; an error as a value, so a slot made ahead and never used leaves no unhandled rejection. */
  private async create(replication: pg.Client): Promise<ExportedSnapshot | Error> {
    const slot = `streamctl_bf_${this.tag}_${++this.count}`;
    try {
      const { rows } = await replication.query<{ consistent_point: string; snapshot_name: string }>(`CREATE_REPLICATION_SLOT ${slot} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT`);
      return { slot, ...rows[0]! };
    } catch (err) {
      return explainSlotError(err);
    }
  }

  /** Ends the replication session, which drops a slot made ahead (slots are temporary). */
  async close(): Promise<void> {
    await this.next;
    this.next = null;
    await this.replication?.end().catch(() => {});
    this.replication = null;
  }
}

interface ExportedSnapshot {
  slot: string;
  consistent_point: string;
  snapshot_name: string;
}

/** PostgreSQL's refusal to create the slot, as the operator's fix (exit 4); anything else unchanged. */
export function explainSlotError(err: unknown): Error {
  const e = err as { code?: string; message?: string };
  if (e.code === '53400') {
    return new EnvironmentNotReadyError('backfill needs a free replication slot for each chunk (a temporary one, dropped at once), and none is free', [
      `max_replication_slots: every slot is in use (${e.message}); raise max_replication_slots in postgresql.conf and restart PostgreSQL, or drop an unused slot (SELECT pg_drop_replication_slot('name'))`,
    ]);
  }
  if (e.code === '42501') {
    return new EnvironmentNotReadyError('backfill reads each chunk in a snapshot exported by a replication slot, and this user may not create one', [
      `grant the REPLICATION attribute: ALTER ROLE <user> REPLICATION (${e.message})`,
    ]);
  }
  if (e.code === '55000') {
    return new EnvironmentNotReadyError('PostgreSQL is not set up for logical replication', [`set wal_level = logical in postgresql.conf and restart PostgreSQL (${e.message})`]);
  }
  return err as Error;
}
