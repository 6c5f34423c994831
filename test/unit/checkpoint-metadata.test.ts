import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exactMetadata, MetadataReadsDisagree } from '../../src/core/clients/restart-safe-admin.js';

/**
 * exactMetadata on the two reads' shapes as the binding gives them (see its comment): the
 * admin's C-string read (exact up to a NUL, else stray heap bytes after it) and a consumer's
 * committed() read (exact bytes less the last one). The real reads: test/integration/kafka-native-producer.
 */
const json = JSON.stringify({ n: 5, text: `id > 'ü' AND note = "x" ${'-'.repeat(3000)}` });

describe('exactMetadata', () => {
  it('written by kafkajs (no NUL): the admin read with stray bytes after it is cut to the committed length', () => {
    assert.equal(exactMetadata(`${json}----\ufffd\t`, json.slice(0, -1)), json);
    assert.equal(exactMetadata(`${json}}}}`, json.slice(0, -1)), json, 'stray bytes that look like JSON');
    assert.equal(exactMetadata(json, json.slice(0, -1)), json, 'the heap happened to hold a NUL right after it');
  });

  it('written by librdkafka (a trailing NUL): the admin read stops at the NUL, the committed read dropped it; both the same text', () => {
    assert.equal(exactMetadata(json, json), json);
    assert.equal(exactMetadata('{"n":1}', '{"n":1}'), '{"n":1}');
  });

  it('no metadata, empty metadata', () => {
    assert.equal(exactMetadata(null, null), null);
    assert.equal(exactMetadata(undefined, null), null);
    assert.equal(exactMetadata('', null), '');
    assert.equal(exactMetadata('', ''), '');
    assert.equal(exactMetadata('x', ''), 'x', 'one byte without a NUL');
  });

  it('reads that disagree (a commit between them) are refused, not guessed at', () => {
    assert.throws(() => exactMetadata('{"n":2}', '{"n":1'), MetadataReadsDisagree);
    assert.throws(() => exactMetadata('{"n":2}', null), MetadataReadsDisagree);
    assert.throws(() => exactMetadata('{"n":1}', '{"n":1}xyz'), MetadataReadsDisagree);
  });
});
