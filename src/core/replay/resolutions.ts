import type { Letter } from './letter.js';
import { letterKey } from './letter.js';

/**
 * What a replay decided for one dead-lettered (sink, event): a record of the compacted
 * topic `<prefix>.dlq-resolved`, keyed `sink|event id`, written in the same Kafka
 * transaction as the letters the run put back in the DLQ. The latest record of a key wins.
 *
 * - replayed:   the event is in the sink (delivered now, or found already there).
 * - superseded: the sink already held a newer version of the row; nothing was written.
 * - requeued:   it failed again and went back to the DLQ with more attempts; the copies
 *               with at most `attempts` are closed, the new copy (more attempts) is open.
 */
export type Outcome = 'replayed' | 'superseded' | 'requeued';
export const OUTCOMES: readonly Outcome[] = ['replayed', 'superseded', 'requeued'];

export interface Resolution {
  outcome: Outcome;
  /** The replay run that decided. */
  run: string;
  at: string;
  /** The attempts of the letter it closed (for requeued: copies up to this many are closed). */
  attempts: number;
  /** The sink it went to (differs from the key's sink with --to). */
  to: string;
  /** Short reason: superseded by which version, or the new failure's class. */
  detail: string;
}

export function resolutionTopic(dlqTopic: string): string {
  return `${dlqTopic}-resolved`;
}

export function encodeResolution(r: Resolution): string {
  return JSON.stringify(r);
}

export function decodeResolution(text: string): Resolution | null {
  try {
    const r = JSON.parse(text) as Resolution;
    return r && typeof r.outcome === 'string' && typeof r.attempts === 'number' ? r : null;
  } catch {
    return null;
  }
}

/**
 * The state of one letter copy, as inspect shows it and as the open counts count it:
 * `open` (never replayed), `failing` (a replay put it back: it failed again), or the
 * outcome that closed it.
 */
export type LetterState = 'open' | 'failing' | 'replayed' | 'superseded' | 'requeued';

export function stateOf(letter: Letter, resolution: Resolution | undefined): LetterState {
  if (resolution && (resolution.outcome !== 'requeued' || letter.attempts <= resolution.attempts)) return resolution.outcome;
  return letter.replay ? 'failing' : 'open';
}

export const isOpen = (state: LetterState): boolean => state === 'open' || state === 'failing';

/**
 * Resolutions by letter key, in memory: one small entry per resolved letter (the letters
 * themselves are streamed, never kept). Only the fields stateOf needs are held.
 */
export class Resolutions {
  private readonly byKey = new Map<string, Resolution>();

  set(key: string, r: Resolution): void {
    this.byKey.set(key, r);
  }

  get(letter: Pick<Letter, 'sink' | 'eventId'>): Resolution | undefined {
    return this.byKey.get(letterKey(letter.sink, letter.eventId));
  }

  get size(): number {
    return this.byKey.size;
  }
}
