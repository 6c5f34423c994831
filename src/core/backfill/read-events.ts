import { ENVELOPE_VERSION, type ChangeEvent, type Row } from '../event/envelope.js';
import { assertRunId, backfillEventIdOfCanonical, canonicalKeyJson, recordKeyPrefix } from '../event/identity.js';
import { encodeEvent, type EncodedEvent } from '../event/oversize.js';
import { keyOf, type TableRef } from './plan.js';
import type { RecordArena } from './record-arena.js';

/** What every read event of one chunk shares. */
export interface ChunkContext {
  run: string;
  table: TableRef;
  keyColumns: readonly string[];
  /** The chunk's snapshot: every read of it carries this LSN as its version. */
  snapshotLsn: string;
  readAt: string;
  source: ChangeEvent['source'];
  maxRecordBytes: number;
}

export interface ReadRecord {
  key: string;
  value: Buffer;
  /** The full event, only when the row was over the size limit and became a marker (to log it). */
  oversize: { event: ChangeEvent; info: NonNullable<EncodedEvent['oversize']> } | null;
}

// Placeholders that JSON.stringify prints as they are, and no schema, table, LSN or time can hold.
const ID = '\u0001id\u0001';
const KEY = '\u0001key\u0001';
const AFTER = '\u0001after\u0001';

/**
 * The Kafka records of a chunk's rows: byte for byte what `encodeEvent` makes of the
 * `read` event `readEvent` describes (the unit test holds them equal), built in less work,
 * since a backfill writes millions of them and event building was a third of its CPU:
 *  - the text every event of the chunk shares (op, schema, table, lsn, time, source) is
 *    printed once, from a template event with placeholders, so it cannot drift from the
 *    event's own layout; per row only the id, the key and the row are printed;
 *  - the key's canonical JSON is made once and serves the id and the record key (and is
 *    the key's own JSON when it has one column: canonicalKeyJson).
 * A row over kafka.maxRecordBytes goes through `encodeEvent` itself (its oversize marker).
 */
export class ReadEventEncoder {
  private readonly parts: [string, string, string, string];
  private readonly keyPrefix: string;

  /** `arena`: where the values are written (the pipeline's); without one, a Buffer each. */
  constructor(
    private readonly context: ChunkContext,
    private readonly arena: RecordArena | null = null,
  ) {
    const { run, table } = context;
    // The run id checked once, not per row.
    assertRunId(run);
    const template = JSON.stringify(readEvent(context, ID, KEY as unknown as Row, AFTER as unknown as Row));
    const pieces = template.split(/"\\u0001(?:id|key|after)\\u0001"/);
    if (pieces.length !== 4) throw new Error(`read event template has ${pieces.length - 1} placeholders, expected 3`);
    this.parts = pieces as [string, string, string, string];
    this.keyPrefix = recordKeyPrefix(table.schema, table.table);
  }

  encode(after: Row): ReadRecord {
    const key = keyOf(after, this.context.keyColumns);
    const keyJson = JSON.stringify(key);
    const canonical = canonicalKeyJson(key, keyJson);
    const id = backfillEventIdOfCanonical(this.context.run, this.context.table.schema, this.context.table.table, canonical);
    const [a, b, c, d] = this.parts;
    const text = `${a}"${id}"${b}${keyJson}${c}${JSON.stringify(after)}${d}`;
    const value = this.arena ? this.arena.put(text) : Buffer.from(text);
    if (value.length > this.context.maxRecordBytes) {
      const event = readEvent(this.context, id, key, after);
      const record = encodeEvent(event, this.context.maxRecordBytes);
      return { key: record.key.toString(), value: record.value, oversize: record.oversize ? { event, info: record.oversize } : null };
    }
    return { key: this.keyPrefix + canonical, value, oversize: null };
  }
}

/** The `read` event of a backfilled row, as the envelope defines it. */
export function readEvent(context: ChunkContext, id: string, key: Row, after: Row): ChangeEvent {
  return {
    id,
    version: ENVELOPE_VERSION,
    op: 'read',
    schema: context.table.schema,
    table: context.table.table,
    key,
    before: null,
    after,
    lsn: context.snapshotLsn,
    xid: null,
    commit_ts: context.readAt,
    source: context.source,
  };
}
