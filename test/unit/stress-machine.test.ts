import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cpuTimes, parseCpuTimes, stealPercent } from '../../src/core/stress/machine.js';

describe('machine figures: steal', () => {
  it("reads /proc/stat's machine line (its first eight counters; cpu0, cpu1... are not it)", () => {
    const text = 'cpu  100 5 50 800 10 0 5 30 0 0\ncpu0 50 2 25 400 5 0 2 15 0 0\nintr 1 2 3\n';
    assert.deepEqual(parseCpuTimes(text), { total: 1000, steal: 30 });
    assert.equal(parseCpuTimes('cpu0 50 2 25 400 5 0 2 15\n'), null, 'no machine line');
    assert.equal(parseCpuTimes('cpu  1 2 3\n'), null, 'a kernel without the steal counter');
  });

  it('gives the share of the CPU time between two readings that was stolen', () => {
    assert.equal(stealPercent({ total: 1000, steal: 30 }, { total: 3000, steal: 630 }), 30);
    assert.equal(stealPercent({ total: 1000, steal: 30 }, { total: 1300, steal: 31 }), 0.3);
    assert.equal(stealPercent({ total: 1000, steal: 30 }, { total: 1000, steal: 30 }), null, 'no time between them');
    assert.equal(stealPercent(null, { total: 1000, steal: 30 }), null);
  });

  it('reads this machine (Linux)', () => {
    const t = cpuTimes();
    assert.ok(t && t.total > 0 && t.steal >= 0 && t.steal <= t.total, JSON.stringify(t));
  });
});
