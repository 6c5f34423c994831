import type { Kafka } from '../clients/rdkafka.js';
import type { Config } from '../config/types.js';
import type { Enricher } from '../delivery/enrich.js';
import type { ChangeEvent } from '../event/envelope.js';
import { canonicalJson } from '../event/identity.js';
import type { LetterFilter } from './filter.js';
import type { Letter } from './letter.js';
import type { LetterState } from './resolutions.js';
import { loadResolutions, scanLetters } from './scan.js';

/** One letter as inspect shows it: never the raw value (it may hold masked columns). */
export interface LetterView {
  event_id: string;
  sink: string;
  table: string | null;
  key: string | null;
  op: string | null;
  state: LetterState;
  error_class: string;
  message: string;
  attempts: number;
  first_failure_at: string;
  last_failure_at: string;
  source: { topic: string; partition: number; offset: string };
  dlq: { partition: number; offset: string };
  replay_run: string | null;
  resolved_by: string | null;
  /** With --show-event: the event as the sink would receive it (enriched: masked, dropped). */
  event?: ChangeEvent | { hidden: string };
}

export interface InspectSummary {
  /** Distinct letters matching the filters (after dedupe), by state. */
  letters: number;
  states: Record<LetterState, number>;
  duplicates: number;
  /** sink -> error class -> table -> count, open letters only. */
  open_by: Record<string, Record<string, Record<string, number>>>;
  oldest_failure: string | null;
  newest_failure: string | null;
  /** DLQ records read. */
  read: number;
}

export interface InspectResult {
  summary: InspectSummary;
  /** At most `limit` letters, in DLQ order. */
  letters: LetterView[];
  /** More letters matched than were listed. */
  truncated: boolean;
}

export interface InspectOptions {
  filter: LetterFilter;
  limit: number;
  /** Show closed letters too (replayed, superseded, requeued); default: open ones only. */
  all: boolean;
  /** The pipeline's enrichment: what is shown of an event (key included) is enriched first. */
  enrich: Enricher;
  /** Each listed letter carries its (enriched) event. */
  showEvent: boolean;
  signal?: AbortSignal;
}

/** replay-dlq without --execute: a dry run that reads and counts, and writes nothing anywhere. */
export async function inspectDlq(kafka: Kafka, config: Config, options: InspectOptions): Promise<InspectResult> {
  const resolutions = await loadResolutions(kafka, config, options.signal);
  const states: Record<LetterState, number> = { open: 0, failing: 0, replayed: 0, superseded: 0, requeued: 0 };
  const openBy: InspectSummary['open_by'] = {};
  const letters: LetterView[] = [];
  let oldest: string | null = null;
  let newest: string | null = null;
  let total = 0;
  let read = 0;
  let truncated = false;
  const scan = await scanLetters(
    kafka,
    config,
    options.filter,
    resolutions,
    {
      read: (n) => {
        read += n;
      },
      letters: async (batch) => {
        for (const { letter, state } of batch) {
          total++;
          states[state]++;
          const open = state === 'open' || state === 'failing';
          if (open) {
            const byClass = (openBy[letter.sink] ??= {});
            const byTable = (byClass[letter.errorClass] ??= {});
            const table = letter.table ?? '(unreadable event)';
            byTable[table] = (byTable[table] ?? 0) + 1;
            if (letter.lastFailureAt && (oldest === null || letter.lastFailureAt < oldest)) oldest = letter.lastFailureAt;
            if (letter.lastFailureAt && (newest === null || letter.lastFailureAt > newest)) newest = letter.lastFailureAt;
          }
          if (!open && !options.all) continue;
          if (letters.length >= options.limit) {
            truncated = true;
            continue;
          }
          letters.push(viewOf(letter, state, resolutions.get(letter)?.run ?? null, options.enrich, options.showEvent));
        }
      },
    },
    options.signal,
  );
  return {
    summary: { letters: total, states, duplicates: scan.duplicates, open_by: openBy, oldest_failure: oldest, newest_failure: newest, read },
    letters,
    truncated,
  };
}

function viewOf(letter: Letter, state: LetterState, resolvedBy: string | null, enrich: Enricher, showEvent: boolean): LetterView {
  // The DLQ holds the event as read from Kafka, before enrichment: what is shown is the
  // enriched event, so a masked or dropped column is shown masked or not at all, in the
  // key too. An event that cannot be enriched is not shown.
  let enriched: ChangeEvent | null = null;
  try {
    enriched = enrich(JSON.parse(letter.value) as ChangeEvent);
  } catch {
    enriched = null;
  }
  const key = enriched ? (enriched.key === null ? null : canonicalJson(enriched.key)) : letter.rowKey === null ? null : '(hidden: the event cannot be enriched)';
  const event: LetterView['event'] = showEvent ? (enriched ?? { hidden: 'not shown: the event cannot be read or enriched (it could hold masked columns)' }) : undefined;
  return {
    event_id: letter.eventId,
    sink: letter.sink,
    table: letter.table,
    key,
    op: letter.op,
    state,
    error_class: letter.errorClass,
    message: letter.message,
    attempts: letter.attempts,
    first_failure_at: letter.firstFailureAt,
    last_failure_at: letter.lastFailureAt,
    source: letter.source,
    dlq: letter.dlq,
    replay_run: letter.replay?.run ?? null,
    resolved_by: resolvedBy,
    ...(event ? { event } : {}),
  };
}
