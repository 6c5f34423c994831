import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createdAt, isStale } from '../helpers/stale-slots.js';
import { unique } from '../helpers/stack.js';

describe('stale test slots: which names scripts/test may drop', () => {
  const now = Date.now();
  const old = (prefix: string) => `${prefix}_${(now - 2 * 3_600_000).toString(36)}_a1b2c3`;
  it('recognises the names unique() makes, as pipelines, crash witnesses and plain', () => {
    for (const name of [`streamctl_${old('p')}`, `${old('crash')}_witness`, `streamctl_${old('crash')}`, old('keys_other')]) {
      assert.equal(isStale(name, now, 3_600_000), true, name);
    }
  });
  it('leaves a run still going, and every name it did not make, alone', () => {
    assert.equal(isStale(`streamctl_${unique('p')}`, now, 3_600_000), false, 'made a moment ago');
    for (const name of ['streamctl_default', 'streamctl_orders', 'debezium', 'streamctl_p_zzzzzzzzzz_a1b2c3', 'p_1_a1b2c3']) {
      assert.equal(createdAt(name), null, name);
    }
  });
});
