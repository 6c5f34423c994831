import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { keyPartition, murmur2 } from '../../src/core/kafka/partitioner.js';

const metadata = (n: number): PartitionMetadata[] =>
  Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0, offlineReplicas: [] }));

describe('key partitioner', () => {
  it('puts every key in the partition kafkajs DefaultPartitioner does (strings, Buffers, every tail length)', () => {
    // kafkajs (what streamctl used before librdkafka) as the reference: a key's partition must never move.
    const theirs = Partitioners.DefaultPartitioner();
    const keys: Array<string | Buffer> = ['', 'a', 'ab', 'abc', 'abcd', 'public.orders:{"id":"1"}', 'public.t:{"k":"ünïcødé ✓"}', 'public.t:*'];
    for (let i = 0; i < 3000; i++) {
      const bytes = randomBytes(i % 97);
      keys.push(bytes, `public.orders:{"id":"${i * 7919}"}`, bytes.toString('base64'));
    }
    for (const n of [1, 3, 7, 12, 64]) {
      const partitionMetadata = metadata(n);
      for (const key of keys) {
        const message = { key, value: 'v' };
        assert.equal(keyPartition(key, n), theirs({ topic: 't', partitionMetadata, message }), `key ${String(key)} over ${n}`);
      }
    }
  });

  it('matches Java Utils.murmur2 on known values', () => {
    // Values from Kafka's UtilsTest.testMurmur2.
    const cases: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ];
    for (const [text, hash] of cases) assert.equal(murmur2(Buffer.from(text)), hash, text);
  });
});
