import { validateEvent, type ChangeEvent } from '../event/index.js';
import type { Enricher } from './enrich.js';

/** What becomes of one record read from the changes topic before any sink sees it. */
export type Prepared = { ok: true; event: ChangeEvent } | { ok: false; eventId: string; errorClass: string; message: string };

/**
 * Parse, validate against the v1 envelope and the table's row schema, enrich. Anything
 * wrong is a permanent failure for the DLQ: a malformed event must never stop the sink.
 */
export function prepare(raw: string | null, rowProblems: (e: ChangeEvent) => string[], enrich: Enricher): Prepared {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw ?? '');
  } catch (err) {
    return { ok: false, eventId: '', errorClass: 'invalid_json', message: (err as Error).message };
  }
  const eventId = typeof (parsed as { id?: unknown })?.id === 'string' ? (parsed as { id: string }).id : '';
  const envelope = validateEvent(parsed);
  if (!envelope.ok) return { ok: false, eventId, errorClass: 'invalid_event', message: envelope.errors.slice(0, 5).join('; ') };
  // A marker in place of an event over the size limit: never applied, kept in the DLQ on purpose.
  if (envelope.event.op === 'oversize') {
    const o = envelope.event.oversize!;
    return { ok: false, eventId, errorClass: 'oversize', message: `the ${o.op} of this row was ${o.bytes} bytes, over kafka.maxRecordBytes (${o.limit_bytes}): raise it, then backfill the row by its key` };
  }
  const problems = rowProblems(envelope.event);
  if (problems.length > 0) return { ok: false, eventId, errorClass: 'invalid_row', message: problems.slice(0, 5).join('; ') };
  try {
    return { ok: true, event: enrich(envelope.event) };
  } catch (err) {
    return { ok: false, eventId, errorClass: 'enrich_failed', message: (err as Error).message };
  }
}
