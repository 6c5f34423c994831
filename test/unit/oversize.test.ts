import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prepare } from '../../src/core/delivery/prepare.js';
import { encodeEvent, validateEvent, type ChangeEvent } from '../../src/core/event/index.js';
import { change } from '../helpers/events.js';

const identity = (e: ChangeEvent) => e;
const parse = (b: Buffer) => JSON.parse(b.toString()) as ChangeEvent;

describe('oversize: the size limit is decided when the record is built', () => {
  it('leaves an event within the limit as it is', () => {
    const event = change('insert', '0/10', 0, { id: 1 }, { id: 1, doc: 'x'.repeat(1000) });
    const r = encodeEvent(event, 64 * 1024);
    assert.equal(r.oversize, null);
    assert.deepEqual(parse(r.value), event);
    assert.equal(r.key.toString(), 'public.t:{"id":1}');
  });

  it('cuts a huge FULL before-image to the key first, and says so', () => {
    const event = change('update', '0/10', 0, { id: 1 }, { id: 1, doc: 'small' }, { before: { id: 1, doc: 'y'.repeat(5000) } });
    const r = encodeEvent(event, 2000);
    assert.equal(r.oversize, null);
    const out = parse(r.value);
    assert.deepEqual([out.before, out.before_trimmed, out.after], [{ id: 1 }, true, { id: 1, doc: 'small' }]);
    assert.equal(validateEvent(out).ok, true);
  });

  it('replaces an event still over the limit by a valid marker: key, lsn, position, column sizes', () => {
    const event = change('update', '0/10', 3, { id: 7 }, { id: 7, doc: 'z'.repeat(5000), n: 5 }, { unchanged: ['other'] });
    const r = encodeEvent(event, 2000);
    assert.ok(r.oversize);
    const marker = parse(r.value);
    assert.ok(r.value.length < 2000);
    assert.deepEqual(
      { op: marker.op, id: marker.id, key: marker.key, lsn: marker.lsn, position: marker.position, before: marker.before, after: marker.after, unchanged: marker.unchanged },
      { op: 'oversize', id: event.id, key: { id: 7 }, lsn: '0/10', position: 3, before: null, after: null, unchanged: undefined },
    );
    assert.deepEqual(marker.oversize, { op: 'update', bytes: Buffer.byteLength(JSON.stringify(event)), limit_bytes: 2000, columns: { id: 1, doc: 5002, n: 1 } });
    assert.equal(r.key.toString(), 'public.t:{"id":7}', 'the marker keeps the row key, so it lands in the row\'s partition');
    const v = validateEvent(marker);
    assert.deepEqual(v.ok ? [] : v.errors, []);
  });

  it('validates a backfill read marker too, and rejects oversize fields on an ordinary event', () => {
    const read: ChangeEvent = { ...change('read', '0/10', 0, { id: 1 }, { id: 1, doc: 'r'.repeat(5000) }), id: 'r-run1-AAAAAAAAAAAAAAAAAAAAAA', source: { pipeline: 'p', db: 'd', kind: 'backfill', run: 'run1' }, xid: null };
    delete read.position;
    const marker = parse(encodeEvent(read, 2000).value);
    const v = validateEvent(marker);
    assert.deepEqual(v.ok ? [] : v.errors, []);
    const bogus = { ...change('insert', '0/10', 0, { id: 1 }, { id: 1 }), oversize: { op: 'insert', bytes: 1, limit_bytes: 1, columns: {} } };
    assert.equal(validateEvent(bogus).ok, false);
  });

  it('is dead-lettered by the delivery pipeline on purpose (class oversize), never applied', () => {
    const marker = encodeEvent(change('insert', '0/10', 0, { id: 1 }, { id: 1, doc: 'q'.repeat(5000) }), 2000).value.toString();
    const p = prepare(marker, () => [], identity);
    assert.equal(p.ok, false);
    assert.equal(!p.ok && p.errorClass, 'oversize');
    assert.match(!p.ok ? p.message : '', /over kafka\.maxRecordBytes \(2000\): raise it, then backfill the row by its key/);
  });
});
