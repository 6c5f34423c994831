import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConsumedRecord } from '../../src/core/clients/batch-consumer.js';
import { dlqHeaders } from '../../src/core/delivery/dlq.js';
import { canonicalKey, matches, parseSourceRange, parseTime } from '../../src/core/replay/filter.js';
import { parseLetter, REPLAY_HEADERS } from '../../src/core/replay/letter.js';
import { stateOf, type Resolution } from '../../src/core/replay/resolutions.js';
import { compareHeld } from '../../src/core/replay/versions.js';
import { change } from '../helpers/events.js';

const event = change('insert', '0/1A', 3, { id: 7 }, { id: 7, v: 'x' });

function message(overrides: Partial<Parameters<typeof dlqHeaders>[0]> = {}, extra: Record<string, string> = {}): ConsumedRecord {
  const headers = dlqHeaders({
    sink: 'http',
    eventId: event.id,
    key: 'k',
    value: JSON.stringify(event),
    errorClass: 'http_422',
    message: 'HTTP 422',
    attempts: 1,
    firstFailureAt: '2026-12-01T03:00:00.000Z',
    lastFailureAt: '2026-12-01T03:00:01.000Z',
    source: { topic: 'p.changes', partition: 2, offset: '41' },
    ...overrides,
  });
  return { key: Buffer.from('k'), value: Buffer.from(JSON.stringify(event)), offset: '5', headers: { ...headers, ...extra }, timestamp: '0' };
}

const resolution = (outcome: Resolution['outcome'], attempts: number): Resolution => ({ outcome, attempts, run: 'r1', at: '', to: 'http', detail: '' });

describe('replay-dlq letters, filters and states', () => {
  it('reads a letter back from the DLQ headers and the event', () => {
    const l = parseLetter(1, message());
    assert.equal(l.sink, 'http');
    assert.equal(l.eventId, event.id);
    assert.equal(l.table, 'public.t');
    assert.deepEqual(l.rowKey, { id: 7 });
    assert.deepEqual(l.source, { topic: 'p.changes', partition: 2, offset: '41' });
    assert.deepEqual(l.dlq, { partition: 1, offset: '5' });
    assert.equal(l.replay, null);
    assert.deepEqual(parseLetter(0, message({ attempts: 3 }, { [REPLAY_HEADERS.run]: 'replay-x' })).replay, { run: 'replay-x', at: '' });
  });

  it('filters combine: sink, table, class, time, event id, key, source range', () => {
    const l = parseLetter(0, message());
    assert.ok(matches({}, l));
    assert.ok(matches({ sinks: ['http'], tables: ['public.t'], errorClasses: ['http_422'], eventIds: [event.id], keys: [canonicalKey('{"id":7}')] }, l));
    assert.ok(!matches({ sinks: ['redis'] }, l));
    assert.ok(!matches({ tables: ['public.u'] }, l));
    assert.ok(!matches({ keys: [canonicalKey('{"id":8}')] }, l));
    assert.ok(matches({ since: Date.parse('2026-12-01T03:00:01Z') }, l), 'since is inclusive');
    assert.ok(!matches({ until: Date.parse('2026-12-01T03:00:01Z') }, l), 'until is exclusive');
    assert.ok(matches({ sourceOffsets: [parseSourceRange('p.changes:2:40-41')] }, l));
    assert.ok(!matches({ sourceOffsets: [parseSourceRange('p.changes:2:42-')] }, l));
    assert.ok(!matches({ sourceOffsets: [parseSourceRange('p.changes:1:0-100')] }, l));
  });

  it('refuses bad times, ranges and keys with a message that says the form', () => {
    assert.equal(parseTime('2h', 10_000_000), 10_000_000 - 7_200_000);
    assert.equal(parseTime('2026-12-01'), Date.parse('2026-12-01T00:00:00Z'));
    assert.throws(() => parseTime('yesterday'), /not an ISO 8601 time .* nor a duration/);
    assert.throws(() => parseTime('2026-13-45'), /not a valid time/);
    assert.throws(() => parseSourceRange('p.changes:0'), /topic:partition:from-to/);
    assert.throws(() => parseSourceRange('p.changes:0:9-3'), /ends before it starts/);
    assert.throws(() => canonicalKey('id=7'), /not JSON/);
    assert.equal(canonicalKey('{"b":1,"a":2}'), '{"a":2,"b":1}');
  });

  it('a letter is open until resolved; a requeued one closes its copies and leaves the new copy open', () => {
    const first = parseLetter(0, message({ attempts: 1 }));
    const again = parseLetter(0, message({ attempts: 2 }, { [REPLAY_HEADERS.run]: 'r1' }));
    assert.equal(stateOf(first, undefined), 'open');
    assert.equal(stateOf(first, resolution('replayed', 1)), 'replayed');
    assert.equal(stateOf(again, resolution('superseded', 1)), 'superseded', 'replayed or superseded closes every copy');
    assert.equal(stateOf(first, resolution('requeued', 1)), 'requeued');
    assert.equal(stateOf(again, resolution('requeued', 1)), 'failing');
  });

  it('compares the version a sink holds: newer supersedes, equal is already there', () => {
    assert.equal(compareHeld(event, null), 'deliver');
    assert.equal(compareHeld(event, '000000000000001A:0000000004'), 'superseded');
    assert.equal(compareHeld(event, '000000000000001A:0000000003'), 'present');
    assert.equal(compareHeld(event, '000000000000001A:0000000002'), 'deliver');
    assert.equal(compareHeld(event, '0000000000000019:-'), 'deliver');
  });
});
