/**
 * Kafka's default partitioner for keyed records (Java's `Utils.murmur2`, as kafkajs'
 * `Partitioners.DefaultPartitioner` computes it), in 32-bit integer arithmetic.
 *
 * kafkajs' own murmur2 runs on its 64-bit Long emulation and copies every string key into
 * a new Buffer; on a backlog it was ~9 % of capture's CPU. Every operation of the hash
 * (multiply, xor, shift of the low 32 bits) only ever depends on the low 32 bits of its
 * operands, so Math.imul gives the same result; the unit test checks it against kafkajs.
 * The partition of a key must never change (per-key order), so the rule is exactly
 * kafkajs' (and Java's): toPositive(murmur2(key)) % partitions.
 */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

const toPositive = (x: number): number => x & 0x7fffffff;

/**
 * The partition of a keyed record under Kafka's default rule (librdkafka's `murmur2_random`,
 * which the producers use; kafkajs' and Java's DefaultPartitioner): what a test pins.
 */
export function keyPartition(key: Buffer | string, partitions: number): number {
  return toPositive(murmur2(Buffer.isBuffer(key) ? key : Buffer.from(key))) % partitions;
}
