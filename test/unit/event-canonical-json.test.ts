import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson, canonicalKeyJson, changeEventId, changeEventIdPrefix, recordKey } from '../../src/core/event/identity.js';
import { parseLsn } from '../../src/core/event/lsn.js';

/**
 * canonicalJson as it was first written (entries, filter, sort, map, join). Record keys and
 * BigQuery row keys written by earlier versions were made with it: the loop that replaced
 * it for speed must give the same text for every value.
 */
function chainedCanonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') return value.toString();
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map(chainedCanonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${chainedCanonicalJson(v)}`).join(',')}}`;
}

/** A small seeded generator, so a failure names a value that can be made again. */
function values(seed: number): () => unknown {
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const names = ['id', 'a', 'B', 'b', '10', '2', 'é', 'z"q', 'tenant', '', '\u{1F600}', 'Z'];
  const scalar = (): unknown => {
    const pick = Math.floor(next() * 10);
    return [null, undefined, true, 42, -0.5, '9007199254740993', 'line\nbreak "q"', 12345678901234567890n, Number.NaN, 'é'][pick];
  };
  const build = (depth: number): unknown => {
    const kind = depth > 2 ? 0 : Math.floor(next() * 3);
    if (kind === 0) return scalar();
    if (kind === 1) return Array.from({ length: Math.floor(next() * 4) }, () => build(depth + 1));
    const row: Record<string, unknown> = {};
    for (let i = Math.floor(next() * 5); i > 0; i--) row[names[Math.floor(next() * names.length)]!] = build(depth + 1);
    return row;
  };
  return () => build(0);
}

describe('canonicalJson (the record key and row key text)', () => {
  it('gives exactly the text of the chained form for 5,000 generated values', () => {
    const next = values(7);
    for (let i = 0; i < 5000; i++) {
      const value = next();
      assert.equal(canonicalJson(value), chainedCanonicalJson(value), `value #${i}`);
    }
  });

  it('sorts keys by UTF-16 code units and leaves undefined members out', () => {
    assert.equal(canonicalJson({ b: 1, a: undefined, B: [1, { y: 2, x: null }], 10: 'x', 2: 'y' }), '{"10":"x","2":"y","B":[1,{"x":null,"y":2}],"b":1}');
    assert.equal(recordKey('public', 'orders', { tenant: 't1', id: '7' }), 'public.orders:{"id":"7","tenant":"t1"}');
  });
});

describe('canonicalKeyJson (a key\'s canonical JSON from its JSON.stringify)', () => {
  it('is canonicalJson for every generated row key JSON.stringify can print', () => {
    const next = values(11);
    let oneMember = 0;
    for (let i = 0; i < 5000; i++) {
      const value = next();
      if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
      let keyJson: string;
      try {
        keyJson = JSON.stringify(value);
      } catch {
        continue; // a bigint: no key JSON to start from
      }
      if (Object.keys(value).length === 1) oneMember++;
      assert.equal(canonicalKeyJson(value as Record<string, unknown>, keyJson), canonicalJson(value), `value #${i}`);
    }
    assert.ok(oneMember > 100, `only ${oneMember} keys of one member were tried`);
  });

  it('sorts a key of several columns and one whose value is an object', () => {
    assert.equal(canonicalKeyJson({ b: 1, a: 2 }, '{"b":1,"a":2}'), '{"a":2,"b":1}');
    assert.equal(canonicalKeyJson({ k: { y: 1, x: 2 } }, '{"k":{"y":1,"x":2}}'), '{"k":{"x":2,"y":1}}');
    assert.equal(canonicalKeyJson({ id: '7' }, '{"id":"7"}'), '{"id":"7"}');
  });
});

describe('changeEventIdPrefix', () => {
  it('is what changeEventId puts before the position', () => {
    for (const lsn of ['0/0', '16/B374D848', 'FFFFFFFF/FFFFFFFF', '9/0']) {
      for (const position of [0, 1, 4999, 123456]) assert.equal(`${changeEventIdPrefix(parseLsn(lsn))}${position}`, changeEventId(lsn, position));
    }
  });
});
