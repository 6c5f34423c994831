import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/run-cli.js';

describe('streamctl status against the local stack', () => {
  it('shows all five components up, with round-trip times, and exits 0', async () => {
    const r = await runCli(['--json', 'status']);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      components: Record<string, { state: string; rtt_ms: number | null; detail: Record<string, unknown> }>;
      problems: unknown[];
    };
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(report.ok, true);
    for (const name of ['postgres', 'kafka', 'redis', 'bigquery', 'http']) {
      assert.equal(report.components[name]?.state, 'up', name);
      assert.ok(typeof report.components[name]?.rtt_ms === 'number', `${name} rtt`);
    }
    assert.equal(report.components['postgres']?.detail['wal_level'], 'logical');
    assert.deepEqual(report.problems, []);
  });

  it('exits 3 and names the component when one is down', async () => {
    const r = await runCli(['--json', 'status', '--timeout', '3000'], { STREAMCTL_SINKS_REDIS_PORT: '49152' });
    assert.equal(r.code, 3);
    const report = JSON.parse(r.stdout) as { components: Record<string, { state: string }> };
    assert.equal(report.components['redis']?.state, 'down');
    assert.equal(report.components['kafka']?.state, 'up');
  });
});
