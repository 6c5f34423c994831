import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';

/**
 * What an operator met using the merged commands together on the real stack (acceptance
 * review of the merge of #10, #11, #12, #14, #15): each test is one such finding.
 */
describe('acceptance: the merged commands as an operator uses them', { timeout: 120_000 }, () => {
  it('verify of a table that does not exist says verify, not backfill (exit 2)', async () => {
    const table = `public.${unique('nosuch')}`;
    const r = await runCli(['verify', '--table', table]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: cannot verify \(1 problem\)$/m);
    assert.match(r.stderr, new RegExp(`table ${table} does not exist`));
    assert.doesNotMatch(r.stderr, /backfill/);
    const json = await runCli(['--json', 'verify', '--table', table]);
    assert.equal(json.code, 2);
    assert.equal((JSON.parse(json.stdout) as { error: { message: string } }).error.message, 'cannot verify (1 problem)');
  });
});
