import type { BigQuery } from '@google-cloud/bigquery';
import { makeBigQuery } from '../clients/bigquery.js';
import type { BigQuerySinkConfig } from '../config/types.js';
import { qualifiedName } from '../sinks/bigquery/views.js';
import { bucketsOf, keysIn, type KeyBuckets, rowDigest, storedFields, xorInto, newLanes, type Lanes } from './digest.js';
import type { SinkRow, SinkSide } from './sink-side.js';

/** Rows per page when streaming a table's keys out of BigQuery. */
const PAGE_ROWS = 10_000;

/**
 * BigQuery's effective view of a table is the `latest` view (deletes, truncates and
 * re-deliveries applied, unchanged TOAST columns filled in). Its `after` column is the
 * canonical JSON the sink wrote, so the rows are hashed here, in Node, with the very
 * function PostgreSQL's rows are hashed with: BigQuery could hash in SQL (MD5,
 * BIT_XOR), but the stamp inside `after` would have to be cut out of JSON text in SQL,
 * and the emulator's SQL coverage for that is not something to bet a false alarm on.
 * So BigQuery sends the chunk's rows (bytes counted) and Node hashes them.
 */
export class BigQuerySide implements SinkSide {
  readonly name = 'bigquery' as const;
  bytesRead = 0;
  private readonly bq: BigQuery;
  private readonly latest: string;
  private readonly log: string;
  /** The rows of the last chunk digested: a differing chunk is compared row by row without asking twice. */
  private cached: { table: string; keys: readonly string[]; rows: Map<string, SinkRow> } | null = null;

  constructor(private readonly config: BigQuerySinkConfig) {
    this.bq = makeBigQuery(config);
    this.latest = qualifiedName(config.projectId, config.dataset, config.viewLatest);
    this.log = qualifiedName(config.projectId, config.dataset, config.table);
  }

  private async query<T>(sql: string, params: Record<string, unknown>): Promise<T[]> {
    const [rows] = await this.bq.query({ query: sql, params, location: this.config.location });
    return rows as T[];
  }

  private static split(table: string): { schema: string; name: string } {
    const dot = table.indexOf('.');
    return { schema: table.slice(0, dot), name: table.slice(dot + 1) };
  }

  private async latestRows(table: string, keys: readonly string[]): Promise<Map<string, SinkRow>> {
    const { schema, name } = BigQuerySide.split(table);
    const out = new Map<string, SinkRow>();
    if (keys.length === 0) return out;
    const rows = await this.query<{ row_key: string; after: string | null; version: string }>(
      `SELECT row_key, after, version FROM ${this.latest} WHERE source_schema = @schema AND source_table = @table AND row_key IN UNNEST(@keys)`,
      { schema, table: name, keys: [...keys] },
    );
    for (const r of rows) {
      this.bytesRead += r.row_key.length + (r.after?.length ?? 0) + r.version.length;
      const after = r.after === null ? {} : (JSON.parse(r.after) as Record<string, unknown>);
      out.set(r.row_key, { fields: storedFields(after), version: r.version });
    }
    return out;
  }

  async chunkDigest(table: string, keys: readonly string[]): Promise<{ present: number; lanes: Lanes }> {
    const rows = await this.latestRows(table, keys);
    this.cached = { table, keys, rows };
    const lanes = newLanes();
    for (const [k, row] of rows) xorInto(lanes, rowDigest(k, row.fields!));
    return { present: rows.size, lanes };
  }

  async fetchRows(table: string, keys: readonly string[]): Promise<Map<string, SinkRow>> {
    const cached = this.cached;
    const present = cached && cached.table === table && cached.keys === keys ? cached.rows : await this.latestRows(table, keys);
    const out = new Map<string, SinkRow>();
    const absent = keys.filter((k) => !present.has(k));
    // A row the view does not show (deleted, or never written) still has a version in the log, if any event of it landed.
    const versions = new Map<string, string>();
    if (absent.length > 0) {
      const { schema, name } = BigQuerySide.split(table);
      const rows = await this.query<{ row_key: string; version: string }>(
        `SELECT row_key, MAX(version) AS version FROM ${this.log} WHERE source_schema = @schema AND source_table = @table AND row_key IN UNNEST(@keys) GROUP BY row_key`,
        { schema, table: name, keys: absent },
      );
      for (const r of rows) versions.set(r.row_key, r.version);
    }
    for (const k of keys) out.set(k, present.get(k) ?? { fields: null, version: versions.get(k) ?? null });
    return out;
  }

  private async scanKeys(table: string, each: (key: string) => void): Promise<void> {
    const { schema, name } = BigQuerySide.split(table);
    const [job] = await this.bq.createQueryJob({
      query: `SELECT row_key FROM ${this.latest} WHERE source_schema = @schema AND source_table = @table`,
      params: { schema, table: name },
      location: this.config.location,
    });
    let pageToken: string | undefined;
    do {
      const [rows, next] = await job.getQueryResults({ autoPaginate: false, maxResults: PAGE_ROWS, ...(pageToken ? { pageToken } : {}) });
      for (const r of rows as Array<{ row_key: string }>) {
        this.bytesRead += r.row_key.length;
        each(r.row_key);
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken ?? undefined;
    } while (pageToken);
  }

  async keyBuckets(table: string): Promise<KeyBuckets> {
    return bucketsOf((each) => this.scanKeys(table, each));
  }

  async keysInBuckets(table: string, buckets: ReadonlySet<number>): Promise<string[]> {
    return keysIn((each) => this.scanKeys(table, each), buckets);
  }

  async close(): Promise<void> {}
}
