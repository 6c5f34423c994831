import { canonicalJson } from '../event/identity.js';
import type { SinkName } from '../sinks/contract.js';
import type { Letter } from './letter.js';

/** Which letters a replay-dlq run looks at. Every field narrows; none set: all letters. */
export interface LetterFilter {
  sinks?: SinkName[];
  tables?: string[];
  errorClasses?: string[];
  /** Last failure at or after / before (epoch ms). */
  since?: number;
  until?: number;
  eventIds?: string[];
  /** Row keys, as canonical JSON of the primary key. */
  keys?: string[];
  sourceOffsets?: SourceRange[];
}

export interface SourceRange {
  topic: string;
  partition: number;
  from: bigint;
  to: bigint;
}

/** `topic:partition:from-to` (to inclusive; `from-` for open-ended); throws a message fit for the operator. */
export function parseSourceRange(text: string): SourceRange {
  const m = /^(.+):(\d+):(\d+)-(\d*)$/.exec(text);
  if (!m) throw new Error(`'${text}' is not topic:partition:from-to (for example p.changes:0:100-200)`);
  const from = BigInt(m[3]!);
  const to = m[4] === '' ? BigInt(Number.MAX_SAFE_INTEGER) : BigInt(m[4]!);
  if (to < from) throw new Error(`'${text}': the range ends before it starts`);
  return { topic: m[1]!, partition: Number(m[2]), from, to };
}

/**
 * A time for --since/--until: ISO 8601 (`2026-12-01T03:00:00Z`, a date alone is midnight
 * UTC) or a duration back from now (`90m`, `2h`, `3d`). Throws on anything else.
 */
export function parseTime(text: string, now = Date.now()): number {
  const rel = /^(\d+)([smhd])$/.exec(text.trim());
  if (rel) return now - Number(rel[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) throw new Error(`'${text}' is not an ISO 8601 time (2026-12-01T03:00:00Z) nor a duration back from now (90m, 2h, 3d)`);
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new Error(`'${text}' is not a valid time`);
  return at;
}

/** A row key given on the command line as JSON (`{"id":7}`), in the canonical form letters compare. */
export function canonicalKey(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`--key '${text}' is not JSON: give the primary key as an object, for example '{"id":7}'`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`--key '${text}' must be a JSON object of the primary key columns`);
  return canonicalJson(parsed);
}

export function matches(filter: LetterFilter, letter: Letter): boolean {
  if (filter.sinks?.length && !filter.sinks.includes(letter.sink)) return false;
  if (filter.tables?.length && (letter.table === null || !filter.tables.includes(letter.table))) return false;
  if (filter.errorClasses?.length && !filter.errorClasses.includes(letter.errorClass)) return false;
  if (filter.since !== undefined || filter.until !== undefined) {
    const at = Date.parse(letter.lastFailureAt);
    if (Number.isNaN(at)) return false;
    if (filter.since !== undefined && at < filter.since) return false;
    if (filter.until !== undefined && at >= filter.until) return false;
  }
  if (filter.eventIds?.length && !filter.eventIds.includes(letter.eventId)) return false;
  if (filter.keys?.length && (letter.rowKey === null || !filter.keys.includes(canonicalJson(letter.rowKey)))) return false;
  if (filter.sourceOffsets?.length) {
    const { topic, partition, offset } = letter.source;
    if (!/^\d+$/.test(offset)) return false;
    const at = BigInt(offset);
    if (!filter.sourceOffsets.some((r) => r.topic === topic && r.partition === partition && at >= r.from && at <= r.to)) return false;
  }
  return true;
}
