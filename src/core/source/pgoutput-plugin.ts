import { isAscii } from 'node:buffer';
import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';

const identity = (text: string): string => text;

type Relation = Pgoutput.MessageRelation;
type Tuple = Record<string, unknown>;

/**
 * A full tuple, by column index: the text, null for NULL, undefined for an unchanged TOAST
 * value (unless an old tuple supplied it). Typed as the library's tuple so the messages keep
 * its type; decodeTuple reads both forms.
 */
export type TupleValues = Array<string | Buffer | null | undefined>;

/**
 * pgoutput as PostgreSQL text: tuple values stay exactly what the type's output function
 * printed, for pg-types.ts to decode (the library would otherwise run pg's global type
 * parsers, e.g. timestamptz -> Date, which drops the microseconds).
 *
 * The parser caches the relation object it returns and looks it up for every later tuple
 * of that relation; parse runs synchronously on receipt, so replacing the column parsers
 * here takes effect before the next message is read.
 *
 * Tuple values as the library delivers them: text -> string, NULL -> null, unchanged
 * TOAST ('u') -> key present with value undefined (unless an old tuple supplied it).
 *
 * It also reads OIDs and xids as unsigned: the library reads them with a signed 32-bit
 * read, so values >= 2^31 (common on an old cluster) would come out negative.
 *
 * Row messages (insert, update, delete: all but a handful of a backlog's messages) are read
 * here rather than by the library (a unit test holds the two equal): the library's reader
 * made a Buffer view and a TextDecoder call per column and filled a prototype-less
 * dictionary per tuple, and pgoutput decoding was a sixth of the capturer's CPU. Here each
 * text value is one `toString('utf8', start, end)` on the message's own bytes (a substring
 * of the message read as one string, when it is ASCII), and a full
 * tuple (`new`, and `old` under REPLICA IDENTITY FULL) is an array in column order
 * (`TupleValues`, what decodeTuple takes; a dictionary cost ten times an array to fill and
 * read). A key-only tuple ('K') stays the library's dictionary of the key columns. One
 * difference, on purpose: a value that starts with U+FEFF keeps it (TextDecoder drops a
 * leading byte-order mark, so the library lost that character of the row).
 */
export class RawTextPgoutputPlugin extends PgoutputPlugin {
  /** The library's relation objects (the ones its other messages refer to), by unsigned OID. */
  private readonly relations = new Map<number, Relation>();
  /** Read position in the row message being parsed. */
  private pos = 0;

  override parse(buffer: Buffer): Pgoutput.Message {
    switch (buffer[0]) {
      case 0x49 /* I */:
        return this.insert(buffer);
      case 0x55 /* U */:
        return this.update(buffer);
      case 0x44 /* D */:
        return this.delete(buffer);
    }
    const msg = super.parse(buffer);
    switch (msg.tag) {
      case 'relation':
        // The parser's cache is keyed by the signed id it read, not by this field, so
        // correcting the field does not break later lookups.
        msg.relationOid >>>= 0;
        for (const column of msg.columns) {
          column.typeOid >>>= 0;
          column.parser = identity;
        }
        this.relations.set(msg.relationOid, msg);
        break;
      case 'type':
        msg.typeOid >>>= 0;
        break;
      case 'begin':
        msg.xid >>>= 0;
        break;
    }
    return msg;
  }

  private relation(buffer: Buffer): Relation {
    const relation = this.relations.get(buffer.readUInt32BE(1));
    if (!relation) throw new Error('missing relation');
    this.pos = 5;
    return relation;
  }

  private insert(buffer: Buffer): Pgoutput.MessageInsert {
    const relation = this.relation(buffer);
    this.pos++; // 'N'
    return { tag: 'insert', relation, new: this.tuple(buffer, relation) };
  }

  private update(buffer: Buffer): Pgoutput.MessageUpdate {
    const relation = this.relation(buffer);
    let key: Tuple | null = null;
    let old: Tuple | null = null;
    const sub = buffer[this.pos++];
    if (sub === 0x4b /* K */) {
      key = this.keyTuple(buffer, relation);
      this.pos++; // 'N'
    } else if (sub === 0x4f /* O */) {
      old = this.tuple(buffer, relation);
      this.pos++; // 'N'
    } else if (sub !== 0x4e /* N */) {
      throw new Error(`unknown submessage key ${String.fromCharCode(sub ?? 0)}`);
    }
    const new_ = this.tuple(buffer, relation, old);
    return { tag: 'update', relation, key, old, new: new_ };
  }

  private delete(buffer: Buffer): Pgoutput.MessageDelete {
    const relation = this.relation(buffer);
    let key: Tuple | null = null;
    let old: Tuple | null = null;
    const sub = buffer[this.pos++];
    if (sub === 0x4b /* K */) key = this.keyTuple(buffer, relation);
    else if (sub === 0x4f /* O */) old = this.tuple(buffer, relation);
    else throw new Error(`unknown submessage key ${String.fromCharCode(sub ?? 0)}`);
    return { tag: 'delete', relation, key, old };
  }

  /** As the library's: a dictionary of only the key columns, a NULL (a non-key column's placeholder) as undefined. */
  private keyTuple(buffer: Buffer, relation: Relation): Tuple {
    const values = this.values(buffer, relation);
    const key: Tuple = Object.create(null) as Tuple;
    for (const k of relation.keyColumns) {
      const i = relation.columns.findIndex((c) => c.name === k);
      const value = i === -1 ? undefined : values[i];
      key[k] = value === null ? undefined : value;
    }
    return key;
  }

  /** As the library's readTuple, into an array in column order (see TupleValues). */
  private tuple(buffer: Buffer, relation: Relation, unchangedToastFallback?: Tuple | null): Tuple {
    return this.values(buffer, relation, unchangedToastFallback as unknown as TupleValues | null | undefined) as unknown as Tuple;
  }

  private values(buffer: Buffer, { columns }: Relation, fallback?: TupleValues | null): TupleValues {
    let pos = this.pos;
    const count = buffer.readUInt16BE(pos);
    pos += 2;
    if (count > columns.length) throw new RangeError(`pgoutput tuple of ${count} columns for a relation of ${columns.length}`);
    // When the tuple is ASCII (value lengths under 128 too), the whole message is one
    // latin1 string and each value a substring of it: a fraction of a toString per value.
    const text = isAscii(buffer.subarray(pos)) ? buffer.toString('latin1') : null;
    const values: TupleValues = [];
    for (let i = 0; i < count; i++) {
      const kind = buffer[pos++];
      if (kind === 0x74 /* t */) {
        const size = buffer.readUInt32BE(pos);
        pos += 4;
        if (pos + size > buffer.length) throw new RangeError('pgoutput tuple value past the end of the message');
        values.push(text === null ? buffer.toString('utf8', pos, pos + size) : text.substring(pos, pos + size));
        pos += size;
      } else if (kind === 0x6e /* n */) {
        values.push(null);
      } else if (kind === 0x75 /* u */) {
        values.push(fallback?.[i]);
      } else if (kind === 0x62 /* b */) {
        const size = buffer.readUInt32BE(pos);
        pos += 4;
        values.push(buffer.subarray(pos, pos + size));
        pos += size;
      } else {
        throw new Error(`unknown attribute kind ${String.fromCharCode(kind ?? 0)}`);
      }
    }
    this.pos = pos;
    return values;
  }
}
