import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkPool, RecordBuffer } from '../../src/core/capture/record-buffer.js';

describe('RecordBuffer (a capture batch written into a few large buffers)', () => {
  it('gives back every record byte for byte, across buffer boundaries and with multi-byte text', () => {
    const buffer = new RecordBuffer();
    const written: Array<[string, string]> = [];
    let bytes = 0;
    for (let i = 0; i < 6000; i++) {
      const key = `public.t:{"id":"${i}","name":"é${i % 7}"}`;
      const value = JSON.stringify({ id: i, text: '€😀'.repeat(i % 50), pad: 'x'.repeat((i * 37) % 900) });
      const valueBytes = Buffer.byteLength(value);
      buffer.append(key, value, valueBytes);
      written.push([key, value]);
      bytes += valueBytes;
    }
    assert.equal(buffer.length, 6000);
    assert.equal(buffer.bytes, bytes);
    const records = buffer.records();
    assert.equal(records.length, written.length);
    records.forEach((r, i) => {
      assert.equal(r.key.toString('utf8'), written[i]![0], `key #${i}`);
      assert.equal(r.value.toString('utf8'), written[i]![1], `value #${i}`);
    });
  });

  it('takes a record bigger than its buffers (one near kafka.maxRecordBytes) whole', () => {
    const buffer = new RecordBuffer();
    buffer.append('k1', 'small', 5);
    const big = 'b'.repeat(3 * 1024 * 1024);
    buffer.append('k2', big, big.length);
    buffer.append('k3', 'after', 5);
    const records = buffer.records();
    assert.deepEqual(records.map((r) => [r.key.toString(), r.value.length]), [['k1', 5], ['k2', big.length], ['k3', 5]]);
    assert.equal(records[1]!.value.toString(), big);
  });

  it('refuses a byte count that does not match the text (it would cut a record short)', () => {
    assert.throws(() => new RecordBuffer().append('k', 'é', 1), /expected 2/);
  });

  it('writes the next batch into the buffers a released one gave back, and only those of the usual size', () => {
    const pool = new ChunkPool(2);
    const first = new RecordBuffer(pool);
    first.append('k', 'x'.repeat(600 * 1024), 600 * 1024);
    first.append('k', 'y'.repeat(600 * 1024), 600 * 1024); // a second 1 MiB buffer
    first.append('big', 'z'.repeat(2 * 1024 * 1024), 2 * 1024 * 1024); // one of its own size
    const used = first.records().map((r) => r.value.buffer);
    first.release();
    assert.equal(pool.size, 2, 'the two 1 MiB buffers, not the big one');
    const second = new RecordBuffer(pool);
    second.append('k2', 'second', 6);
    const [record] = second.records();
    assert.ok(used.includes(record!.value.buffer), 'reuses a released buffer');
    assert.deepEqual([record!.key.toString(), record!.value.toString()], ['k2', 'second']);
    assert.equal(first.length, 0);
  });
});

