import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/run-cli.js';

describe('streamctl verify (CLI)', () => {
  it('is listed in --help, and its --help says what --repair and --execute do and the exit codes', async () => {
    const top = await runCli(['--help']);
    assert.match(top.stdout, /^  verify /m);
    const r = await runCli(['verify', '--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const flag of ['--table <schema.table>', '--sink <sink>', '--where <sql>', '--chunk-size <rows>', '--settle-timeout <seconds>', '--repair', '--execute', '--rate <rows/s>']) {
      assert.ok(r.stdout.includes(flag), `verify --help lacks ${flag}`);
    }
    assert.match(r.stdout, /--repair alone prints what it would do and writes nothing/);
    // Commander appends "(default: N)" itself: a default written in the text too was shown twice.
    assert.doesNotMatch(r.stdout, /\(default \d+\) \(default: \d+\)/);
    assert.match(r.stdout, /Exit codes:[\s\S]*3 +a check failed/);
  });

  it('lists every usage problem at once (exit 2) before connecting to anything', async () => {
    const r = await runCli(['verify', '--execute', '--rate', '10']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot verify \(3 problems\)/);
    assert.match(r.stderr, /--table schema\.table/);
    assert.match(r.stderr, /--execute applies a repair: use it with --repair/);
    assert.match(r.stderr, /--rate paces a repair/);
    const sink = await runCli(['verify', '--table', 't', '--sink', 'http']);
    assert.equal(sink.code, 2);
    assert.match(sink.stderr, /must be one of redis, bigquery, all/);
  });
});
