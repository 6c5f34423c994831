import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { completeness, rebuildTarget, verdictFor } from '../../src/core/delivery/sink-state.js';

describe('sink state verdicts (a read model that came back empty)', () => {
  it('is intact with its marker, whatever else', () => {
    assert.equal(verdictFor({ marker: 'g', stored: '5', committed: '9' }), 'intact');
    assert.equal(verdictFor({ marker: 'g' }), 'intact');
  });
  it('adopts offsets written before markers existed', () => {
    assert.equal(verdictFor({ stored: '5', committed: '9' }), 'adopt');
  });
  it('is fresh when the group never committed', () => {
    assert.equal(verdictFor({}), 'fresh');
    assert.equal(verdictFor({ committed: '-1' }), 'fresh');
    assert.equal(verdictFor({ committed: '0' }), 'fresh');
  });
  it('is lost when the group has delivered but the sink holds neither marker nor offsets', () => {
    assert.equal(verdictFor({ committed: '1' }), 'lost');
    assert.equal(verdictFor({ committed: '123456789012' }), 'lost');
  });
});

describe('whether the changes topic can rebuild a sink', () => {
  it('can when every partition still starts at 0 and the topic is not compacted', () => {
    const c = completeness([{ partition: 0, low: '0' }, { partition: 1, low: '0' }], 'delete', '86400000');
    assert.equal(c.complete, true);
    assert.match(c.why, /retention\.ms 86400000/);
  });
  it('cannot once retention deleted a segment, and names the partition', () => {
    const c = completeness([{ partition: 0, low: '0' }, { partition: 1, low: '4000' }], 'delete', '86400000');
    assert.equal(c.complete, false);
    assert.match(c.why, /partition 1 starts at offset 4000/);
  });
  it('cannot when the topic is compacted', () => {
    assert.equal(completeness([{ partition: 0, low: '0' }], 'compact,delete', '-1').complete, false);
  });
});

describe('rebuild markers', () => {
  it('carry the offset the rebuild must reach, so a restart knows it is not done', () => {
    assert.equal(rebuildTarget('2026-12-01T11:00:00.000Z rebuild 0a1b2c3d until 11023'), 11023n);
    assert.equal(rebuildTarget('2026-12-01T11:00:00.000Z fresh 0a1b2c3d'), undefined);
    assert.equal(rebuildTarget('2026-12-01T11:00:00.000Z adopt 0a1b2c3d'), undefined);
  });
});
