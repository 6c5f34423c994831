import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { subcommandOf } from '../../src/cli.js';

describe('which subcommand module the CLI loads', () => {
  it('finds the subcommand after global options, skipping the values of those that take one', () => {
    assert.equal(subcommandOf(['stream', '--role', 'capture']), 'stream');
    assert.equal(subcommandOf(['-c', 'backfill', 'backfill']), 'backfill');
    assert.equal(subcommandOf(['--config', 'f.yaml', '--json', 'status']), 'status');
    assert.equal(subcommandOf(['--log-level', 'debug', '--no-color', 'replay-dlq', '--sink', 'http']), 'replay-dlq');
  });
  it('loads every command when there is none to pick: no subcommand, help, a typo', () => {
    assert.equal(subcommandOf([]), null);
    assert.equal(subcommandOf(['--help']), null);
    assert.equal(subcommandOf(['help', 'stream']), null);
    assert.equal(subcommandOf(['strem']), null);
    assert.equal(subcommandOf(['constructor']), null);
  });
});
