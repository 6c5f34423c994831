import type { ChangeEvent } from '../event/envelope.js';
import { canonicalKeyJson, recordKeyPrefix } from '../event/identity.js';
import { encodeEventText, type EncodedEventText } from '../event/oversize.js';

/** An encoded change, plus the metrics label of its table and op. Reused: read it before the next `encode`. */
export interface CaptureRecord extends EncodedEventText {
  label: string;
}

// Placeholders JSON.stringify prints as they are and that no schema, table or source can hold.
const SLOTS = ['id', 'key', 'before', 'after', 'lsn', 'position', 'xid', 'commit_ts'] as const;
const placeholder = (name: string): string => `\u0001${name}\u0001`;
const SPLIT = new RegExp(`"\\\\u0001(?:${SLOTS.join('|')})\\\\u0001"`);

/** The text of every event of one (schema, table, op, source), with a gap for each field that varies. */
interface Template {
  /** The source block last seen with this template, and its JSON (what the template holds). */
  source: ChangeEvent['source'];
  sourceJson: string;
  /** The JSON around the gaps, in SLOTS order: pieces[i] comes before slot i. */
  pieces: readonly string[];
  keyPrefix: string;
  label: string;
  /** The per-transaction parts, merged with the pieces around them (see `forTransaction`). */
  lsn: string | null;
  xid: number | null;
  commitTs: string | null;
  /** pieces[4] + lsn + pieces[5]: between `after` and `position`. */
  middle: string;
  /** pieces[6] + xid + pieces[7] + commit_ts + pieces[8]: after `position`. */
  tail: string;
}

/**
 * Capture's event JSON, byte for byte what `encodeEventText` makes (the unit test holds
 * them equal), in less work: JSON.stringify of the whole event was the largest function
 * of the capturer's CPU profile, and most of each event's text is the same for every
 * change of a table (op, schema, table, source) or of a transaction (lsn, xid, commit
 * time). That text is printed once, from the first event itself with placeholders in its
 * varying fields (so its field order is the event's own and cannot drift), and each change
 * prints only its id, key and row images. Events the template does not describe (extra
 * fields: unchanged TOAST columns, key moves, truncates) and events over the size limit
 * go through `encodeEventText` itself.
 */
export class ChangeEncoder {
  /** schema -> table -> op -> template. */
  private readonly templates = new Map<string, Map<string, Map<string, Template | null>>>();
  private readonly out: CaptureRecord = { key: '', value: '', bytes: 0, oversize: null, label: '' };
  /** Events encoded through a template (the rest went through encodeEventText): for tests. */
  templated = 0;

  constructor(private readonly maxBytes: number) {}

  encode(event: ChangeEvent): CaptureRecord {
    const out = this.out;
    const template = this.templateOf(event);
    if (template === null) return this.generic(event, `${event.schema}.${event.table}|${event.op}`);
    if (template.lsn !== event.lsn || template.xid !== event.xid || template.commitTs !== event.commit_ts) forTransaction(template, event);
    const p = template.pieces;
    const position = String(event.position);
    const keyJson = JSON.stringify(event.key);
    const before = event.before === null ? 'null' : JSON.stringify(event.before);
    const value = `${p[0]}${JSON.stringify(event.id)}${p[1]}${keyJson}${p[2]}${before}${p[3]}${JSON.stringify(event.after)}${template.middle}${position}${template.tail}`;
    const bytes = Buffer.byteLength(value);
    // Over the limit: encodeEventText trims `before` or writes the oversize marker.
    if (bytes > this.maxBytes) return this.generic(event, template.label);
    out.key = template.keyPrefix + canonicalKeyJson(event.key!, keyJson);
    out.value = value;
    out.bytes = bytes;
    out.oversize = null;
    out.label = template.label;
    this.templated++;
    return out;
  }

  /** The event through encodeEventText, into the reused record. */
  private generic(event: ChangeEvent, label: string): CaptureRecord {
    const { key, value, bytes, oversize } = encodeEventText(event, this.maxBytes);
    Object.assign(this.out, { key, value, bytes, oversize, label });
    return this.out;
  }

  /** The event's template, made from it the first time; null when the event needs the generic encoder. */
  private templateOf(event: ChangeEvent): Template | null {
    if (
      event.unchanged !== undefined ||
      event.moved_to !== undefined ||
      event.moved_from !== undefined ||
      event.before_trimmed !== undefined ||
      event.oversize !== undefined ||
      event.key === null ||
      typeof event.position !== 'number' ||
      typeof event.id !== 'string'
    )
      return null;
    let tables = this.templates.get(event.schema);
    if (!tables) this.templates.set(event.schema, (tables = new Map()));
    let ops = tables.get(event.table);
    if (!ops) tables.set(event.table, (ops = new Map()));
    let template = ops.get(event.op);
    if (template !== undefined && template !== null && template.source !== event.source) {
      // Another source object (a capturer shares one; other callers may not): the same text keeps the template.
      if (JSON.stringify(event.source) === template.sourceJson) template.source = event.source;
      else template = undefined;
    }
    if (template === undefined) {
      template = makeTemplate(event);
      ops.set(event.op, template);
    }
    return template;
  }
}

function makeTemplate(event: ChangeEvent): Template | null {
  const gaps: Record<string, string> = {};
  for (const slot of SLOTS) gaps[slot] = placeholder(slot);
  // The event's own field order (a spread keeps it), its varying fields replaced.
  const text = JSON.stringify({ ...event, ...gaps });
  const order = [...text.matchAll(/"\\u0001([a-z_]+)\\u0001"/g)].map((m) => m[1]);
  // A layout this encoder does not know (a field moved or added between the slots): the generic encoder, always right.
  if (order.join() !== SLOTS.join()) return null;
  const pieces = text.split(SPLIT);
  return {
    source: event.source,
    sourceJson: JSON.stringify(event.source),
    pieces,
    keyPrefix: recordKeyPrefix(event.schema, event.table),
    label: `${event.schema}.${event.table}|${event.op}`,
    lsn: null,
    xid: null,
    commitTs: null,
    middle: '',
    tail: '',
  };
}

/** Prints the transaction's own parts into the template once, not once per change. */
function forTransaction(template: Template, event: ChangeEvent): void {
  const p = template.pieces;
  template.lsn = event.lsn;
  template.xid = event.xid;
  template.commitTs = event.commit_ts;
  template.middle = `${p[4]}${JSON.stringify(event.lsn)}${p[5]}`;
  template.tail = `${p[6]}${JSON.stringify(event.xid)}${p[7]}${JSON.stringify(event.commit_ts)}${p[8]}`;
}
