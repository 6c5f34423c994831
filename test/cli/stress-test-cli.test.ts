import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/run-cli.js';

describe('stress-test flags', () => {
  it('lists every bad option at once and exits 2, before touching any server', async () => {
    const r = await runCli(['stress-test', '--slo', 'p98<1ms,loss=1ms', '--kill-deliverer-every', '5', '--layout', 'split', '--sinks', 'redis,kafka', '--report', '/nonexistent-dir/r.json']);
    assert.equal(r.code, 2, r.stderr);
    for (const problem of [/p98<1ms/, /loss takes a plain number/, /--kill-deliverer-every needs --spawn/, /--layout split needs --spawn/, /unknown sink 'kafka'/, /--report \/nonexistent-dir\/r.json: the folder/]) assert.match(r.stderr, problem);
  });

  it('--help names the SLO syntax and the exit codes', async () => {
    const r = await runCli(['stress-test', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--slo <list>/);
    assert.match(r.stdout, /3 +a check failed/);
  });

  it('stream --sink: an unknown or disabled sink is a usage error (exit 2), each listed', async () => {
    const r = await runCli(['stream', '--role', 'deliver', '--sink', 'kafka', '--sink', 'http'], { STREAMCTL_SINKS_HTTP_ENABLED: 'false' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--sink kafka: unknown sink/);
    assert.match(r.stderr, /--sink http: that sink is disabled in the config/);
  });
});
