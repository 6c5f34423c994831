import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';

const identity = (text: string): string => text;

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
 */
export class RawTextPgoutputPlugin extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
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
}
