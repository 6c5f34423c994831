import type { ConsumedRecord } from '../clients/batch-consumer.js';
import type { Kafka } from '../clients/rdkafka.js';
import { derivedNames } from '../config/names.js';
import type { Config } from '../config/types.js';
import { matches, type LetterFilter } from './filter.js';
import { letterKey, parseLetter, type Letter } from './letter.js';
import { decodeResolution, isOpen, Resolutions, resolutionTopic, stateOf, type LetterState } from './resolutions.js';
import { readToEnd } from './topic-reader.js';

/** Reads `<prefix>.dlq-resolved` to its end into memory (one small entry per resolved letter). */
export async function loadResolutions(kafka: Kafka, config: Config, signal?: AbortSignal): Promise<Resolutions> {
  const names = derivedNames(config);
  const resolutions = new Resolutions();
  await readToEnd(kafka, resolutionTopic(names.dlqTopic), { groupPrefix: `streamctl-${config.pipeline.id}-replay-read`, ...(signal ? { signal } : {}) }, async (_p, messages) => {
    for (const m of messages) {
      const r = m.value ? decodeResolution(m.value.toString()) : null;
      if (r && m.key) resolutions.set(m.key.toString(), r);
    }
  });
  return resolutions;
}

export interface ScannedLetter {
  letter: Letter;
  state: LetterState;
}

export interface ScanHooks {
  /**
   * One fetched batch's letters that match the filter, first copy of each (sink, event)
   * only, with their state; later copies are counted as duplicates. Awaited before the
   * next batch is read, so a slow consumer of letters holds memory flat.
   */
  letters(batch: ScannedLetter[], heartbeat: () => Promise<void>): Promise<void>;
  /** Every DLQ record read (matching or not), for progress. */
  read?(records: number): void;
}

export interface ScanResult {
  complete: boolean;
  duplicates: number;
}

/**
 * Streams the DLQ (read_committed, from the start to its end when the scan began), parses
 * each letter, keeps those matching the filter and dedupes by (sink, event id): a crash
 * can write a letter twice. The set of keys seen is the only thing that grows with the
 * DLQ (one short string per distinct letter); the letters themselves are not kept.
 *
 * A duplicate copy with more attempts (a replay put it back) replaces nothing: the first
 * copy decides the key's state unless a later copy is open where the first is closed
 * (requeued: the copy with more attempts is the open one), which is then handed over.
 */
export async function scanLetters(kafka: Kafka, config: Config, filter: LetterFilter, resolutions: Resolutions, hooks: ScanHooks, signal?: AbortSignal): Promise<ScanResult> {
  const names = derivedNames(config);
  const handedOpen = new Set<string>();
  const handedClosed = new Set<string>();
  let duplicates = 0;
  const complete = await readToEnd(
    kafka,
    names.dlqTopic,
    { groupPrefix: `streamctl-${config.pipeline.id}-replay-read`, ...(signal ? { signal } : {}) },
    async (partition: number, messages: ConsumedRecord[], heartbeat) => {
      hooks.read?.(messages.length);
      const out: ScannedLetter[] = [];
      for (const m of messages) {
        const letter = parseLetter(partition, m);
        if (!matches(filter, letter)) continue;
        const key = letterKey(letter.sink, letter.eventId);
        const state = stateOf(letter, resolutions.get(letter));
        if (handedOpen.has(key) || (handedClosed.has(key) && !isOpen(state))) {
          duplicates++;
          continue;
        }
        if (isOpen(state)) {
          handedClosed.delete(key);
          handedOpen.add(key);
        } else handedClosed.add(key);
        out.push({ letter, state });
      }
      if (out.length > 0) await hooks.letters(out, heartbeat);
    },
  );
  return { complete, duplicates };
}
