import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultConfig } from '../../src/core/config/index.js';
import { eventVersion } from '../../src/core/event/version.js';
import { validateEvent } from '../../src/core/event/validate.js';
import { differingColumns, KeyBuckets, lanesEqual, lanesHex, rowDigest, storedFields } from '../../src/core/verify/digest.js';
import { keyConditions, planRepair, repairDelete } from '../../src/core/verify/repair.js';
import { snapshotVersion, type VerifyResult } from '../../src/core/verify/verify.js';

describe('verify digests', () => {
  it('a row digest does not depend on column order, and changes with any value, name or key', () => {
    const a = rowDigest('{"id":1}', storedFields({ id: 1, name: 'x', n: '5' }));
    const b = rowDigest('{"id":1}', storedFields({ n: '5', name: 'x', id: 1 }));
    assert.ok(lanesEqual(a, b));
    for (const other of [
      rowDigest('{"id":1}', storedFields({ id: 1, name: 'y', n: '5' })),
      rowDigest('{"id":1}', storedFields({ id: 1, nam: 'x', n: '5' })),
      rowDigest('{"id":2}', storedFields({ id: 1, name: 'x', n: '5' })),
      rowDigest('{"id":1}', storedFields({ id: 1, name: 'x' })),
    ]) {
      assert.ok(!lanesEqual(a, other), lanesHex(other));
    }
  });

  it('leaves the _streamctl stamp out and stores values as the Redis sink does (JSON text, null as null)', () => {
    const f = storedFields({ id: 1, v: null, _streamctl: { processed_at: 'now' } });
    assert.deepEqual([...f], [['id', '1'], ['v', 'null']]);
  });

  it('names the columns that differ, including one present on one side only', () => {
    assert.deepEqual(differingColumns(storedFields({ a: 1, b: 2, c: 3 }), storedFields({ a: 1, b: 9, d: 4 })), ['b', 'c', 'd']);
  });

  it('key buckets differ exactly where a key is missing or added', () => {
    const pg = new KeyBuckets();
    const sink = new KeyBuckets();
    for (let i = 0; i < 1000; i++) {
      pg.add(`{"id":${i}}`);
      if (i !== 17) sink.add(`{"id":${i}}`);
    }
    sink.add('{"id":5000}');
    const d = pg.differing(sink);
    assert.deepEqual([...d].sort(), [KeyBuckets.bucketOfKey('{"id":17}'), KeyBuckets.bucketOfKey('{"id":5000}')].sort());
  });
});

describe('verify repair', () => {
  it("a repair delete is a valid envelope whose version sorts after every change before C and before C's read and anything after", () => {
    const config = defaultConfig();
    const e = repairDelete(config, 'public.t', { id: 5 }, '1/2000', 3);
    assert.equal(validateEvent(e).ok, true, JSON.stringify(validateEvent(e)));
    const v = eventVersion(e);
    assert.ok(v > eventVersion({ lsn: '1/1FF8', position: 99, op: 'update' }), 'after a commit before C');
    assert.ok(v < snapshotVersion('1/2000'), "before C's read");
    assert.ok(v < eventVersion({ lsn: '1/2000', position: 0, op: 'insert' }), 'before a change committed at C');
  });

  it('batches key conditions short enough for a backfill run, quoting every value', () => {
    const keys = Array.from({ length: 400 }, (_, i) => [`t'${i}`, String(i)]);
    const conds = keyConditions(['tenant', 'id'], keys);
    assert.ok(conds.length > 1);
    for (const c of conds) assert.ok(Buffer.byteLength(c) <= 3000, `${c.length}`);
    assert.match(conds[0]!, /^\("tenant", "id"\) IN \(\('t''0', '0'\), /);
    assert.equal(conds.join(' ').match(/\('t''/g)?.length, 400);
  });

  it('plans re-reads for missing and differing rows, deletes for extra ones, and refuses to invert a masked key', () => {
    const config = defaultConfig();
    config.enrich.tables['public.m'] = { drop: [], rename: {}, mask: ['id'], add: {} };
    const base = { chunks: 1, chunks_differing: 1, transient: 0, unsettled: 0, unchecked: 0, confirmed: true, extras_checked: true, bytes_postgres: 0, bytes_sink: 0, seconds: 1, rows_per_s: 1, rows_postgres: 1, equal: false, missing: 0, extra: 0, differing: 0 };
    const result: VerifyResult = {
      run: 'vf',
      started_at: '',
      finished_at: '',
      equal: false,
      interrupted: false,
      seconds: 1,
      results: [
        { ...base, table: 'public.t', sink: 'redis', differences: [
          { kind: 'differs', key: '{"id":1}', columns: ['v'], key_text: ['1'], sink_version: null, snapshot: '0/100' },
          { kind: 'extra', key: '{"id":9}', columns: [], key_text: null, sink_version: null, snapshot: '0/200' },
        ] },
        { ...base, table: 'public.t', sink: 'bigquery', differences: [{ kind: 'missing', key: '{"id":1}', columns: [], key_text: ['1'], sink_version: null, snapshot: '0/100' }] },
        { ...base, table: 'public.m', sink: 'redis', differences: [{ kind: 'extra', key: '{"id":"hmac-sha256:ab"}', columns: [], key_text: null, sink_version: null, snapshot: '0/300' }] },
      ],
    };
    const plans = planRepair(config, result);
    assert.deepEqual(plans.find((p) => p.table === 'public.t'), { table: 'public.t', reread: [['1']], deletes: [{ key: { id: 9 }, snapshot: '0/200' }], cannot: [] });
    assert.deepEqual(plans.find((p) => p.table === 'public.m')?.cannot, ['{"id":"hmac-sha256:ab"}']);
  });
});
