import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeProgress, encodeProgress, newProgress } from '../../src/core/backfill/progress.js';
import { isForSink, TARGET_SINKS_HEADER, targetSinksHeaders } from '../../src/core/event/targets.js';
import { lostRange } from '../../src/core/delivery/replay-retained.js';

describe('records for some sinks only (backfill --sink)', () => {
  it('a record without the header is for every sink', () => {
    for (const sink of ['redis', 'bigquery', 'http'] as const) assert.equal(isForSink(undefined, sink), true);
    assert.equal(isForSink({}, 'http'), true);
    assert.equal(targetSinksHeaders(null), undefined);
    assert.equal(targetSinksHeaders([]), undefined);
  });

  it('a record naming sinks is for those only, as Kafka hands the header back (a Buffer)', () => {
    const headers = targetSinksHeaders(['redis', 'http'])!;
    assert.deepEqual(headers, { [TARGET_SINKS_HEADER]: 'http,redis' });
    const fromKafka = { [TARGET_SINKS_HEADER]: Buffer.from(headers[TARGET_SINKS_HEADER]!) };
    assert.equal(isForSink(fromKafka, 'redis'), true);
    assert.equal(isForSink(fromKafka, 'http'), true);
    assert.equal(isForSink(fromKafka, 'bigquery'), false);
    assert.equal(isForSink({ [TARGET_SINKS_HEADER]: [Buffer.from('redis')] }, 'bigquery'), false);
  });

  it('a run keeps its sinks and rate through the checkpoint; runs from before read as every sink, unpaced', () => {
    const p = newProgress('bf-1', 'p', ['public.t'], null, 100, new Date(0), { sinks: ['redis'], rate: 250 });
    const back = decodeProgress(encodeProgress(p))!;
    assert.deepEqual(back.sinks, ['redis']);
    assert.equal(back.rate, 250);
    const { sinks: _s, rate: _r, ...old } = p;
    const oldBack = decodeProgress(JSON.stringify(old))!;
    assert.equal(oldBack.sinks, null);
    assert.equal(oldBack.rate, null);
  });
});

describe('what a sink that lost its history cannot get back from the topic', () => {
  it('nothing when every partition starts at 0; else the offsets before each one\'s first retained', () => {
    assert.deepEqual(lostRange([{ partition: 0, low: '0' }, { partition: 1, low: '0' }]).lost, []);
    assert.match(lostRange([{ partition: 0, low: '0' }]).words, /^nothing/);
    const r = lostRange([{ partition: 0, low: '0' }, { partition: 1, low: '1190' }]);
    assert.deepEqual(r.lost, [{ partition: 1, first_retained: '1190' }]);
    assert.match(r.words, /^the events before offset 1190 of partition 1 /);
  });
});
