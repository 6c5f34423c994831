import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import QueryStream from 'pg-query-stream';
import { makePgClient } from '../clients/postgres.js';
import type { Config } from '../config/types.js';
import { chunkQuery, keyOf, qualified, tableText } from '../backfill/plan.js';
import { quoteIdent } from '../postgres/sql.js';
import { ChunkSnapshots } from '../backfill/snapshot.js';
import type { TableInfo } from '../backfill/tables.js';
import type { Enricher } from '../delivery/enrich.js';
import { ENVELOPE_VERSION, type ChangeEvent, type Row } from '../event/envelope.js';
import { canonicalJson } from '../event/identity.js';
import { decodeQueryRow, RAW_TEXT_TYPES, SESSION_OPTIONS, TypeRegistry } from '../source/pg-types.js';
import { storedFields, type StoredFields } from './digest.js';

/** A PostgreSQL row in the form the sinks store it: decoded (pg-types.ts) and enriched (enrich.ts). */
export interface PgRow {
  /** Canonical JSON of the enriched key: the sinks' row key. */
  key: string;
  /** The key columns' text as PostgreSQL printed it: how the row is read again (repair, re-check). */
  keyText: string[];
  fields: StoredFields;
}

/**
 * PostgreSQL's side of verify: keyset chunks of a table, each read in an exact snapshot
 * (backfill's ChunkSnapshots, so a chunk has a consistent point C that the sinks' versions
 * compare with), through the decoder capture and backfill share and the enrichment the
 * deliverer applies. Rows are hashed in Node: PostgreSQL cannot print the JSON text the
 * sinks store (the decoder's type rules, renames, HMAC masks) in SQL.
 */
export class PgSide {
  bytesRead = 0;
  private readonly data: pg.Client;
  private readonly snapshots: ChunkSnapshots;
  private registry: TypeRegistry | null = null;

  constructor(
    private readonly config: Config,
    private readonly enrich: Enricher,
  ) {
    this.data = makePgClient(config.postgres, { options: SESSION_OPTIONS, application_name: 'streamctl verify' });
    this.snapshots = new ChunkSnapshots(config.postgres, `v${process.pid}_${randomBytes(3).toString('hex')}`);
  }

  get client(): pg.Client {
    return this.data;
  }

  async connect(): Promise<void> {
    await this.data.connect();
    this.data.on('error', () => {});
    await this.snapshots.connect('streamctl verify snapshots');
    const data = this.data;
    this.registry = new TypeRegistry((sql, params) => data.query(sql, params));
  }

  async close(): Promise<void> {
    await this.snapshots.close();
    await this.data.end().catch(() => {});
  }

  /** Runs `read` inside a fresh exact snapshot; returns its consistent point with the result. */
  private async inSnapshot<T>(info: TableInfo, read: () => Promise<T>): Promise<{ snapshot: string; result: T }> {
    const snapshot = await this.snapshots.begin(this.data);
    try {
      const { rows } = await this.data.query<{ oid: number }>(
        'SELECT atttypid::int AS oid FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped',
        [qualified(info.ref)],
      );
      await this.registry!.resolve(rows.map((r) => r.oid));
      const result = await read();
      await this.data.query('COMMIT');
      return { snapshot, result };
    } catch (err) {
      await this.data.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  private async stream(text: string, values: string[], info: TableInfo, each: (row: PgRow) => void): Promise<void> {
    const stream = this.data.query(new QueryStream(text, values, { batchSize: 1000, rowMode: 'array', types: RAW_TEXT_TYPES } as never));
    let fields: Array<{ name: string; dataTypeID: number }> | null = null;
    let keyIndexes: number[] = [];
    for await (const raw of stream as AsyncIterable<unknown[]>) {
      if (fields === null) {
        fields = (stream as unknown as { _result: { fields: Array<{ name: string; dataTypeID: number }> } })._result.fields;
        keyIndexes = info.keyColumns.map((c) => fields!.findIndex((f) => f.name === c));
      }
      for (const v of raw) if (typeof v === 'string') this.bytesRead += v.length;
      const after = decodeQueryRow(fields, raw, this.registry!);
      each(this.canonical(info, after, keyIndexes.map((i) => raw[i] as string)));
    }
  }

  /** The row as the sinks hold it: the deliverer's enrichment applied to the event a read would be. */
  private canonical(info: TableInfo, after: Row, keyText: string[]): PgRow {
    const event: ChangeEvent = {
      id: 'verify',
      version: ENVELOPE_VERSION,
      op: 'read',
      schema: info.ref.schema,
      table: info.ref.table,
      key: keyOf(after, info.keyColumns),
      before: null,
      after,
      lsn: null,
      xid: null,
      commit_ts: '1970-01-01T00:00:00.000Z',
      source: { pipeline: this.config.pipeline.id, db: this.config.postgres.database, kind: 'backfill', run: 'verify' },
    };
    const enriched = this.enrich(event);
    return { key: canonicalJson(enriched.key), keyText, fields: storedFields(enriched.after ?? {}) };
  }

  /** One keyset chunk after `afterKey`, in its own snapshot. */
  async readChunk(info: TableInfo, afterKey: string[] | null, where: string | null, limit: number): Promise<{ snapshot: string; rows: PgRow[] }> {
    const q = chunkQuery(info.ref, info.keyColumns, afterKey, where, limit);
    const { snapshot, result } = await this.inSnapshot(info, async () => {
      const rows: PgRow[] = [];
      await this.stream(q.text, q.values, info, (r) => rows.push(r));
      return rows;
    });
    return { snapshot, rows: result };
  }

  /** The rows of the given keys (PostgreSQL's key text), in a fresh snapshot: re-checks. */
  async readKeys(info: TableInfo, keys: readonly string[][]): Promise<{ snapshot: string; rows: Map<string, PgRow> }> {
    const { snapshot, result } = await this.inSnapshot(info, async () => {
      const rows = new Map<string, PgRow>();
      for (let from = 0; from < keys.length; from += 1000) {
        const q = keysQuery(info, keys.slice(from, from + 1000));
        await this.stream(q.text, q.values, info, (r) => rows.set(r.key, r));
      }
      return rows;
    });
    return { snapshot, rows: result };
  }

  /** Every key of the table (under `where`) in one snapshot: where extra rows are looked for. */
  async streamKeys(info: TableInfo, where: string | null, each: (key: string) => void): Promise<string> {
    const cols = info.keyColumns.map(quoteIdent).join(', ');
    // Whole rows, not just keys: enrichment may derive the key from a dropped or masked column, and it runs on rows.
    const text = `SELECT * FROM ${qualified(info.ref)}${where ? ` WHERE (${where})` : ''} ORDER BY ${cols}`;
    const { snapshot } = await this.inSnapshot(info, () => this.stream(text, [], info, (r) => each(r.key)));
    return snapshot;
  }

  tableName(info: TableInfo): string {
    return tableText(info.ref);
  }
}

/** `SELECT * ... WHERE (k1, k2) IN (($1, $2), ...)`: untyped parameters, read as the key columns' own types. */
export function keysQuery(info: TableInfo, keys: readonly string[][]): { text: string; values: string[] } {
  const cols = info.keyColumns.map(quoteIdent);
  const values: string[] = [];
  const tuples = keys.map((k) => {
    if (k.length !== cols.length) throw new RangeError(`a key of ${tableText(info.ref)} has ${k.length} values for ${cols.length} key columns`);
    const params = k.map((v) => {
      values.push(v);
      return `$${values.length}`;
    });
    return `(${params.join(', ')})`;
  });
  const text = `SELECT * FROM ${qualified(info.ref)} WHERE (${cols.join(', ')}) IN (${tuples.join(', ')})`;
  return { text, values };
}
