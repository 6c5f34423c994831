import { endOffsets, type Kafka, type OffsetsAdmin } from '../clients/rdkafka.js';
import { derivedNames } from '../config/names.js';
import type { Config } from '../config/types.js';
import type { SinkName } from '../sinks/contract.js';
import { isOpen, resolutionTopic } from './resolutions.js';
import { loadResolutions, scanLetters } from './scan.js';

export interface OpenLetters {
  /** Distinct open dead letters (not resolved by a replay), per sink that dead-lettered them. */
  bySink: Partial<Record<SinkName, number>>;
  total: number;
}

/**
 * What `dlq_depth`, `status` and the metrics count: distinct (sink, event) letters of the
 * DLQ not resolved by a replay (open, or failing again after one). A full read of the DLQ
 * and of its resolutions, streamed.
 */
export async function countOpenLetters(kafka: Kafka, config: Config): Promise<OpenLetters> {
  const resolutions = await loadResolutions(kafka, config);
  const out: OpenLetters = { bySink: {}, total: 0 };
  await scanLetters(kafka, config, {}, resolutions, {
    letters: async (batch) => {
      for (const { letter, state } of batch) {
        if (!isOpen(state)) continue;
        out.bySink[letter.sink] = (out.bySink[letter.sink] ?? 0) + 1;
        out.total++;
      }
    },
  });
  return out;
}

/**
 * countOpenLetters for a process that asks often (stream's lag timer): it reads again only
 * when the DLQ or its resolutions have grown since the last count.
 */
export class OpenLetterCounter {
  private lastEnds = '';
  private last: OpenLetters | null = null;

  constructor(
    private readonly kafka: Kafka,
    private readonly config: Config,
  ) {}

  async count(admin: OffsetsAdmin): Promise<OpenLetters> {
    const names = derivedNames(this.config);
    const topics = new Set(await admin.listTopics());
    const ends: string[] = [];
    for (const topic of [names.dlqTopic, resolutionTopic(names.dlqTopic)]) {
      if (!topics.has(topic)) continue;
      ends.push(topic, ...(await endOffsets(admin, topic)).map((p) => `${p.partition}:${p.high}`));
    }
    const key = ends.join(',');
    if (this.last && key === this.lastEnds) return this.last;
    this.last = await countOpenLetters(this.kafka, this.config);
    this.lastEnds = key;
    return this.last;
  }
}
