/**
 * How the pipeline cuts one partition's batch into writes ("units") and in which order
 * they may run. Pure, so the ordering rules are tested on their own.
 *
 * A unit is a run of consecutive records written by one `sink.write` call and retried as
 * a whole (only its failed records are sent again). Units run concurrently up to a bound,
 * except that a unit never starts before the latest earlier unit holding a record of the
 * same row (Kafka record key) has finished: one row's events reach the sink in order, while
 * a row stuck in retries holds back only that row, not the partition.
 */
export interface Unit {
  /** Index of the unit's first record in the batch. */
  from: number;
  /** One past its last record. */
  to: number;
  /** Earlier units this one waits for (the latest earlier unit of each row it carries). */
  after: number[];
}

export function planUnits(keys: readonly string[], unitSize: number): Unit[] {
  if (!Number.isInteger(unitSize) || unitSize < 1) throw new RangeError(`unit size must be a positive integer, got ${unitSize}`);
  const units: Unit[] = [];
  const lastUnitOfKey = new Map<string, number>();
  for (let from = 0; from < keys.length; from += unitSize) {
    const u = units.length;
    const to = Math.min(keys.length, from + unitSize);
    const after = new Set<number>();
    for (let i = from; i < to; i++) {
      const key = keys[i]!;
      const previous = lastUnitOfKey.get(key);
      if (previous !== undefined && previous !== u) after.add(previous);
      lastUnitOfKey.set(key, u);
    }
    units.push({ from, to, after: [...after].sort((a, b) => a - b) });
  }
  return units;
}

/**
 * The offsets that may be committed: units finish in any order, but the committed offset
 * only covers the leading units that are all finished (in the sink or in the DLQ).
 */
export class Watermark {
  private readonly finished: boolean[];
  private leading = 0;

  constructor(units: number) {
    this.finished = new Array<boolean>(units).fill(false);
  }

  finish(unit: number): void {
    this.finished[unit] = true;
    while (this.leading < this.finished.length && this.finished[this.leading]) this.leading++;
  }

  /** How many leading units are finished; the next offset to commit is where the next one starts. */
  get done(): number {
    return this.leading;
  }

  get complete(): boolean {
    return this.leading === this.finished.length;
  }
}
