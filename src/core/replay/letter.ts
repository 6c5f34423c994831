import type { ConsumedRecord } from '../clients/batch-consumer.js';
import { DLQ_HEADERS, type DeadLetter } from '../delivery/dlq.js';
import type { SinkName } from '../sinks/contract.js';
import type { ChangeEvent } from '../event/envelope.js';

/**
 * Headers a replay adds to a letter it puts back in the DLQ (it failed again), beside the
 * usual DLQ headers (../delivery/dlq.ts): which run sent it back and when.
 */
export const REPLAY_HEADERS = {
  run: 'streamctl-replay-run',
  replayedAt: 'streamctl-replayed-at',
} as const;

export { SINK_NAMES as SINKS } from '../sinks/registry.js';

/** One record of `<prefix>.dlq`, read back: the DLQ headers plus what the event says of itself. */
export interface Letter extends DeadLetter {
  /** Where this copy sits in the DLQ. */
  dlq: { partition: number; offset: string };
  /** Set when a replay put this letter back (it failed again). */
  replay: { run: string; at: string } | null;
  /** From the event itself; null when the value is not a readable event. */
  table: string | null;
  op: string | null;
  rowKey: ChangeEvent['key'];
}

function header(m: ConsumedRecord, name: string): string {
  const v = m.headers?.[name];
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? '' : one.toString();
}

/** The dead-lettered (sink, event) a letter is about: what dedupe and resolutions key on. */
export function letterKey(sink: string, eventId: string): string {
  return `${sink}|${eventId}`;
}

/**
 * Parses one DLQ record. The event id comes from the header (the runner sets it even for
 * an event it could not parse, as ''); a letter without one is keyed by its source
 * position, which is what identifies it then.
 */
export function parseLetter(partition: number, m: ConsumedRecord): Letter {
  const value = m.value?.toString() ?? '';
  let event: Partial<ChangeEvent> | null = null;
  try {
    const parsed = JSON.parse(value) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) event = parsed as Partial<ChangeEvent>;
  } catch {
    event = null;
  }
  const source = {
    topic: header(m, DLQ_HEADERS.sourceTopic),
    partition: Number(header(m, DLQ_HEADERS.sourcePartition) || -1),
    offset: header(m, DLQ_HEADERS.sourceOffset),
  };
  const headerId = header(m, DLQ_HEADERS.eventId);
  const eventId = headerId || (typeof event?.id === 'string' ? event.id : '') || `no-id@${source.topic}:${source.partition}:${source.offset}`;
  const run = header(m, REPLAY_HEADERS.run);
  const attempts = Number(header(m, DLQ_HEADERS.attempts));
  return {
    sink: header(m, DLQ_HEADERS.sink) as SinkName,
    eventId,
    key: m.key?.toString() ?? '',
    value,
    errorClass: header(m, DLQ_HEADERS.errorClass) || 'unknown',
    message: header(m, DLQ_HEADERS.message),
    attempts: Number.isFinite(attempts) && attempts > 0 ? attempts : 1,
    firstFailureAt: header(m, DLQ_HEADERS.firstFailure),
    lastFailureAt: header(m, DLQ_HEADERS.lastFailure),
    source,
    dlq: { partition, offset: m.offset },
    replay: run ? { run, at: header(m, REPLAY_HEADERS.replayedAt) } : null,
    table: typeof event?.schema === 'string' && typeof event.table === 'string' ? `${event.schema}.${event.table}` : null,
    op: typeof event?.op === 'string' ? event.op : null,
    rowKey: event?.key && typeof event.key === 'object' ? event.key : null,
  };
}
