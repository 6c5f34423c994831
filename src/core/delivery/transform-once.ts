import { Counter, type Registry } from 'prom-client';
import type { Prepared } from './prepare.js';

/** Bounds of the shared cache (see SharedTransforms). */
export interface TransformCacheLimits {
  /** Entries kept at most (one per record not yet read by every sink). */
  maxEntries: number;
  /** Estimated bytes kept at most (3 x the record's length: the text, the parsed and the enriched event). */
  maxBytes: number;
}

/**
 * At 5,000 events/s three sinks drift apart by a few seconds at most while they keep up;
 * 8,192 records of ~740 B are ~18 MB. A sink further behind than this computes its own
 * (as before this cache existed) instead of the process holding its whole backlog.
 */
export const DEFAULT_TRANSFORM_CACHE: TransformCacheLimits = { maxEntries: 8192, maxBytes: 24 * 1024 * 1024 };

/** Which transforms were computed and which were taken from the cache, for a metric. */
export type TransformObserver = (outcome: 'computed' | 'shared', valid: boolean) => void;

interface Entry {
  raw: string | null;
  prepared: Prepared;
  /** Sinks of this process that have not taken it yet. */
  remaining: number;
  bytes: number;
}

/**
 * Parse, validate (ajv) and enrich each record of the changes topic once per process,
 * however many sinks read it. Each sink keeps its own consumer group and offsets, so the
 * sinks read the same record at different moments, and a sink may read it again (a
 * rebalance, a circuit that reopens, Redis seeking to the offsets it stored). So rather than
 * one consumer fanning out to every sink (which would tie the sinks' offsets and speeds
 * together, and be a second delivery pipeline to prove under SIGKILL), each sink asks this
 * cache, keyed by topic/partition/offset:
 *
 * - the first sink to reach a record computes it and leaves it for the `readers - 1`
 *   others; the last of them to take it removes it, so the cache holds only the records
 *   between the fastest and the slowest sink;
 * - a hit needs the same text at that position (a topic deleted and made again under the
 *   same name holds other records at the same offsets): else it is computed again;
 * - bounded (entries and estimated bytes, oldest out first): a sink further behind than the
 *   cache, or one reading a record again, computes it itself (and keeps it only for the
 *   sinks that may be behind it). That costs time, never
 *   correctness: the transform is pure but for enrich's `processed_at` stamp.
 *
 * Dead letters stay per sink: an invalid record is validated once, and each sink still puts
 * its own letter (with its sink header) in the DLQ, where replay-dlq looks for it. A shared
 * event is frozen (its top level and rows) because three sinks hold the same object: a sink
 * that changed it would change it for the others.
 */
export class SharedTransforms {
  /**
   * Per topic, per partition: entries by offset (a number: hashing a string key built per
   * record cost more than a fifth of what the cache saved, in a profile), and the highest
   * offset computed there (a miss at or below it is a sink behind the others).
   */
  private readonly partitions = new Map<string, Map<number, PartitionCache>>();
  private count = 0;
  private bytes = 0;
  /**
   * Insertion order, oldest first, for eviction (may hold entries already taken: skipped).
   * Not a Map's own order: V8 leaves a hole per deleted Map entry until it rehashes, and
   * finding the first entry walks over them, so taking the oldest from a Map on every
   * insert cost more than the transforms it saved (measured: 4 % of a stream's CPU).
   */
  private order: Array<{ at: PartitionCache; offset: number; entry: Entry }> = [];
  private head = 0;

  constructor(
    private readonly transform: (raw: string | null) => Prepared,
    private readonly readers: number,
    private readonly limits: TransformCacheLimits = DEFAULT_TRANSFORM_CACHE,
    private readonly observe: TransformObserver = () => {},
  ) {
    if (!Number.isInteger(readers) || readers < 1) throw new RangeError(`readers must be a positive integer, got ${readers}`);
  }

  /** The record at `topic`/`partition`/`offset`, prepared: computed here or by another sink of this process. */
  prepare(topic: string, partition: number, offset: string | number, raw: string | null): Prepared {
    if (this.readers === 1) return this.computed(raw);
    const at = this.partition(topic, partition);
    const position = Number(offset);
    const hit = at.entries.get(position);
    if (hit !== undefined) {
      if (hit.raw === raw) {
        if (--hit.remaining === 0) this.remove(at, position, hit);
        this.observe('shared', hit.prepared.ok);
        return hit.prepared;
      }
      this.remove(at, position, hit);
    }
    const prepared = this.computed(raw);
    if (prepared.ok) freezeEvent(prepared.event);
    // The first to reach a record leaves it for every other sink. A sink behind the cache
    // (the record was computed and dropped) leaves it only for the sinks that may be behind
    // it too, at most readers - 2: else its misses would push out what the others will read.
    const first = position > at.front;
    if (first) at.front = position;
    const remaining = first ? this.readers - 1 : this.readers - 2;
    const bytes = 3 * (raw?.length ?? 0) + 200;
    if (remaining > 0 && bytes <= this.limits.maxBytes / 4) {
      const entry = { raw, prepared, remaining, bytes };
      at.entries.set(position, entry);
      this.order.push({ at, offset: position, entry });
      this.count++;
      this.bytes += bytes;
      this.evict();
    }
    return prepared;
  }

  /** Records waiting for a sink to take them (for tests). */
  get size(): number {
    return this.count;
  }

  private partition(topic: string, partition: number): PartitionCache {
    let byPartition = this.partitions.get(topic);
    if (byPartition === undefined) this.partitions.set(topic, (byPartition = new Map()));
    let at = byPartition.get(partition);
    if (at === undefined) byPartition.set(partition, (at = { front: -1, entries: new Map() }));
    return at;
  }

  private computed(raw: string | null): Prepared {
    const prepared = this.transform(raw);
    this.observe('computed', prepared.ok);
    return prepared;
  }

  private remove(at: PartitionCache, offset: number, entry: Entry): void {
    at.entries.delete(offset);
    this.count--;
    this.bytes -= entry.bytes;
  }

  private evict(): void {
    const { maxEntries, maxBytes } = this.limits;
    // Entries taken by every sink leave the queue here too; the queue is bounded as well, so
    // one record a sink never takes cannot keep every later id in it.
    while (this.head < this.order.length) {
      const { at, offset, entry } = this.order[this.head]!;
      const live = at.entries.get(offset) === entry;
      if (live && this.count <= maxEntries && this.bytes <= maxBytes && this.order.length - this.head <= 4 * maxEntries) break;
      if (live) this.remove(at, offset, entry);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}

interface PartitionCache {
  front: number;
  entries: Map<number, Entry>;
}

function freezeEvent(event: Extract<Prepared, { ok: true }>['event']): void {
  // Property by property, not a loop over names: keyed access made this a profile's hot spot.
  if (event.key) Object.freeze(event.key);
  if (event.before) Object.freeze(event.before);
  if (event.after) Object.freeze(event.after);
  if (event.moved_to) Object.freeze(event.moved_to);
  if (event.moved_from) Object.freeze(event.moved_from);
  if (event.unchanged) Object.freeze(event.unchanged);
  Object.freeze(event.source);
  Object.freeze(event);
}

/**
 * `streamctl_delivery_transforms_total{outcome,valid}`: transforms computed, and taken from
 * another sink's work (`shared`), in this process's registry. With N sinks in one process
 * and the sinks keeping up, `computed` grows by one per record and `shared` by N - 1.
 */
export function transformCounter(registry: Registry): TransformObserver {
  const counter = new Counter({
    name: 'streamctl_delivery_transforms_total',
    help: 'Records parsed, validated and enriched for delivery (outcome=computed), or taken from the one transform another sink of this process computed (outcome=shared); valid=false went to the DLQ',
    labelNames: ['outcome', 'valid'] as const,
    registers: [registry],
  });
  return (outcome, valid) => counter.inc({ outcome, valid: String(valid) });
}
