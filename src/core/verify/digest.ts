import * as crypto from 'node:crypto';

/** crypto.hash exists from Node 20.12; older 20.x fall back to a Hash object. */
const sha1 = (text: string): Buffer =>
  typeof crypto.hash === 'function' ? crypto.hash('sha1', text, 'buffer') : crypto.createHash('sha1').update(text).digest();
import { STAMP_FIELD } from '../delivery/enrich.js';

/**
 * Order-independent digests of rows, computed the same way in Node (PostgreSQL's rows,
 * BigQuery's rows) and in Redis (a Lua script over the chunk's hashes, redis-side.ts).
 *
 * The unit is one stored field: SHA-1 of `K \0 column \0 value`, where K is the row key's
 * canonical JSON (as the sinks key rows) and value is the column's JSON text as the Redis
 * sink stores it (JSON.stringify of the decoded, enriched value). The first 128 bits of
 * each field digest are XORed into the row's and the chunk's digest. Why fields and not
 * whole rows: Redis hands a hash's fields back in no fixed order and Lua cannot sort them
 * the way Node does (its string order follows the server's locale), while XOR needs no
 * order. Why XOR is sound here: a (key, column) pair occurs at most once per side, so no
 * two equal items can cancel; a changed, missing or added field changes the digest
 * unless SHA-1's first 128 bits collide.
 *
 * Left out on both sides: the `_streamctl` stamp (processed_at differs on every write by
 * design, so it says nothing about the row's data).
 */
export type Lanes = Uint32Array; // 4 lanes of 32 bits = 128 bits

export const newLanes = (): Lanes => new Uint32Array(4);

export function xorInto(acc: Lanes, other: Lanes): void {
  for (let i = 0; i < 4; i++) acc[i] = (acc[i]! ^ other[i]!) >>> 0;
}

export const lanesHex = (l: Lanes): string => Array.from(l, (x) => x.toString(16).padStart(8, '0')).join('');

export const lanesEqual = (a: Lanes, b: Lanes): boolean => a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];

/** SHA-1 of `text`, first 128 bits as lanes. crypto.hash: one-shot, without a Hash object per field (a third of verify's CPU went to them). */
export function sha1Lanes(text: string): Lanes {
  const d = sha1(text);
  return Uint32Array.of(d.readUInt32BE(0), d.readUInt32BE(4), d.readUInt32BE(8), d.readUInt32BE(12));
}

/** A row as stored: column -> JSON text of its value (the stamp already left out). */
export type StoredFields = Map<string, string>;

/** The stored fields of an enriched row: what the Redis sink would write for it. */
export function storedFields(after: Record<string, unknown>): StoredFields {
  const out: StoredFields = new Map();
  for (const [name, value] of Object.entries(after)) {
    if (name === STAMP_FIELD) continue;
    out.set(name, JSON.stringify(value ?? null));
  }
  return out;
}

/** The row digest: XOR of its field digests. */
export function rowDigest(key: string, fields: StoredFields): Lanes {
  const acc = newLanes();
  for (const [name, value] of fields) xorInto(acc, sha1Lanes(`${key}\u0000${name}\u0000${value}`));
  return acc;
}

/** Columns whose stored text differs (present on one side only included), sorted. */
export function differingColumns(a: StoredFields, b: StoredFields): string[] {
  const out = new Set<string>();
  for (const [name, value] of a) if (b.get(name) !== value) out.add(name);
  for (const name of b.keys()) if (!a.has(name)) out.add(name);
  return [...out].sort();
}

/**
 * Key buckets for finding extra rows (in a sink, gone from PostgreSQL) without holding a
 * table's keys: per bucket (the first 16 bits of SHA-1(K)) a count and the XOR of the
 * keys' digests, on each side. Only buckets that differ are looked into, and they hold
 * about rows/65,536 keys each.
 */
export const BUCKETS = 65_536;

export class KeyBuckets {
  readonly counts = new Uint32Array(BUCKETS);
  readonly xor = new Uint32Array(BUCKETS * 4);

  add(key: string): void {
    const d = sha1Lanes(key);
    const b = KeyBuckets.bucketOf(d);
    this.counts[b] = this.counts[b]! + 1;
    for (let i = 0; i < 4; i++) this.xor[b * 4 + i] = (this.xor[b * 4 + i]! ^ d[i]!) >>> 0;
  }

  static bucketOf(d: Lanes): number {
    return d[0]! >>> 16;
  }

  static bucketOfKey(key: string): number {
    return KeyBuckets.bucketOf(sha1Lanes(key));
  }

  /** Buckets whose count or digest differ from `other`'s. */
  differing(other: KeyBuckets): Set<number> {
    const out = new Set<number>();
    for (let b = 0; b < BUCKETS; b++) {
      if (this.counts[b] !== other.counts[b]) {
        out.add(b);
        continue;
      }
      for (let i = 0; i < 4; i++) {
        if (this.xor[b * 4 + i] !== other.xor[b * 4 + i]) {
          out.add(b);
          break;
        }
      }
    }
    return out;
  }

  get total(): number {
    let n = 0;
    for (const c of this.counts) n += c;
    return n;
  }
}

/** Visits every key a sink holds for a table. */
export type KeyScan = (each: (key: string) => void) => Promise<void>;

/** Key buckets of everything `scan` visits. */
export async function bucketsOf(scan: KeyScan): Promise<KeyBuckets> {
  const buckets = new KeyBuckets();
  await scan((k) => buckets.add(k));
  return buckets;
}

/** The keys `scan` visits that fall in `buckets`. */
export async function keysIn(scan: KeyScan, buckets: ReadonlySet<number>): Promise<string[]> {
  const out: string[] = [];
  await scan((k) => {
    if (buckets.has(KeyBuckets.bucketOfKey(k))) out.push(k);
  });
  return out;
}
