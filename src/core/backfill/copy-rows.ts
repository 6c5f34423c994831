import { isAscii } from 'node:buffer';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

/** A row as a query in array mode with raw-text parsers gives it: each column's text, null for NULL. */
export type TextRow = Array<string | null>;

// COPY TO's text format escapes these after a backslash (and nothing else: no octal or hex forms).
const ESCAPED: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

/** A field of COPY's text format as the column's own text: `\\` `\n` `\t` ... undone (any other escaped character is itself, as COPY FROM reads it). */
export function unescapeCopyField(field: string): string {
  let out = '';
  let from = 0;
  for (let i = field.indexOf('\\'); i !== -1 && i < field.length - 1; i = field.indexOf('\\', from)) {
    const c = field[i + 1]!;
    out += field.slice(from, i) + (ESCAPED[c] ?? c);
    from = i + 2;
  }
  return out + field.slice(from);
}

/** One line of COPY's text format (no newline): tab-separated fields, `\N` for NULL. */
export function parseCopyLine(line: string): TextRow {
  const fields: TextRow = line.split('\t');
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f === '\\N') fields[i] = null;
    else if (f.includes('\\')) fields[i] = unescapeCopyField(f);
  }
  return fields;
}

const textOf = (line: Buffer): string => line.toString(isAscii(line) ? 'latin1' : 'utf8');

/**
 * Splits the bytes of `COPY ... TO STDOUT` (text format, UTF-8) into rows. A chunk may end
 * inside a row (pg-copy-streams passes on what each socket read held); the rest waits for
 * the next. Newlines inside values are escaped, and 0x0A is never part of a multi-byte UTF-8
 * character, so every 0x0A ends a row. A chunk that is all ASCII (the common case) is read
 * with a latin1 slice per row, which does not decode UTF-8.
 */
export class CopyRowSplitter {
  private rest: Buffer | null = null;

  /** The rows that `chunk` completes. */
  push(chunk: Buffer): TextRow[] {
    const rows: TextRow[] = [];
    let start = 0;
    if (this.rest !== null) {
      // Only the row cut in two is joined (not the whole chunk copied behind the rest of the last).
      const end = chunk.indexOf(10);
      if (end === -1) {
        this.rest = Buffer.concat([this.rest, chunk]);
        return rows;
      }
      rows.push(parseCopyLine(textOf(Buffer.concat([this.rest, chunk.subarray(0, end)]))));
      this.rest = null;
      start = end + 1;
    }
    const ascii = isAscii(chunk.subarray(start));
    for (let end = chunk.indexOf(10, start); end !== -1; end = chunk.indexOf(10, start)) {
      rows.push(parseCopyLine(chunk.toString(ascii ? 'latin1' : 'utf8', start, end)));
      start = end + 1;
    }
    // A copy: the chunk itself is not kept alive for the few bytes of its last row.
    if (start < chunk.length) this.rest = Buffer.from(chunk.subarray(start));
    return rows;
  }

  /** At the end of the COPY: a row left without its newline means the data was cut short. */
  end(): void {
    if (this.rest !== null) throw new Error(`COPY output ended inside a row (${this.rest.length} bytes without a newline)`);
  }
}

/**
 * The rows of a COPY TO stream (pg-copy-streams' `to()`), a socket read's worth at a time.
 * The stream is not destroyed when the caller stops early (a failed chunk): a COPY half
 * read holds the connection, and only reading it to its end (drainCopy) frees it for the
 * chunk's ROLLBACK.
 */
export async function* copyRowBatches(stream: Readable): AsyncGenerator<TextRow[]> {
  const rows = new CopyRowSplitter();
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) {
    const batch = rows.push(chunk as Buffer);
    if (batch.length > 0) yield batch;
  }
  rows.end();
}

/** Reads what is left of a COPY TO stream and drops it, so its connection can run the next statement. */
export async function drainCopy(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed || stream.errored) return;
  stream.resume();
  await Promise.race([once(stream, 'end'), once(stream, 'close')]).catch(() => {});
}
