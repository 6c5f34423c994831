import type { KeyBuckets, Lanes, StoredFields } from './digest.js';
import type { SinkName } from '../sinks/registry.js';

/** The sinks verify can compare: derived from the sink registry in ./sides.ts. */
export type { VerifySinkName } from './sides.js';

/** A row as one sink holds it, with the version of the last change it applied. */
export interface SinkRow {
  /** null: the sink has no row for the key. */
  fields: StoredFields | null;
  /** The sink's stored version (eventVersion text), null when it holds none for the key. */
  version: string | null;
}

/**
 * What verify needs of a sink's effective view of one table (`schema.table`), keyed by the
 * canonical JSON of the (enriched) row key. Each side counts the bytes it had read.
 */
export interface SinkSide<N extends string = SinkName> {
  readonly name: N;
  /** Bytes of row data the sink side read (in the server for Redis, over the wire for BigQuery). */
  readonly bytesRead: number;
  /** Rows present among `keys` and the XOR of their field digests (digest.ts). */
  chunkDigest(table: string, keys: readonly string[]): Promise<{ present: number; lanes: Lanes }>;
  /** The rows and versions of `keys`, for the row-by-row comparison of a differing chunk. */
  fetchRows(table: string, keys: readonly string[]): Promise<Map<string, SinkRow>>;
  /** Count and digest per key bucket of every key the sink holds for the table. */
  keyBuckets(table: string): Promise<KeyBuckets>;
  /** The keys the sink holds in `buckets`. */
  keysInBuckets(table: string, buckets: ReadonlySet<number>): Promise<string[]>;
  close(): Promise<void>;
}
