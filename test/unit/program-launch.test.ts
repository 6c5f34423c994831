import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { programSpawn } from '../../src/core/program-launch.js';

const root = new URL('../../../', import.meta.url);

describe('starting streamctl as a program from node code', () => {
  it('runs bin/streamctl itself on this node, so its launcher picks the flags', () => {
    const spawn = programSpawn('/app/bin/streamctl', ['stream', '--role', 'capture']);
    assert.equal(spawn.command, '/app/bin/streamctl');
    assert.deepEqual(spawn.args, ['stream', '--role', 'capture']);
    assert.deepEqual(spawn.env, { STREAMCTL_NODE: process.execPath });
  });

  it('gives extra node flags to the launcher, which puts them after its own', () => {
    const spawn = programSpawn('bin/streamctl', ['stream'], ['--cpu-prof', '--max-semi-space-size=16']);
    assert.deepEqual(spawn.env, { STREAMCTL_NODE: process.execPath, STREAMCTL_NODE_ARGS: '--cpu-prof --max-semi-space-size=16' });
  });

  it("the Docker image runs bin/streamctl as a program too, and sets none of the launcher's flags itself", () => {
    const dockerfile = readFileSync(new URL('docker/Dockerfile', root), 'utf8');
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    assert.match(runtime, /ENTRYPOINT \["\/app\/bin\/streamctl"\]/);
    assert.doesNotMatch(runtime, /max-semi-space-size|MALLOC_ARENA_MAX/, 'a flag set here would be overridden or doubled by the launcher');
  });
});

describe("the launcher's variables reach node's environment", () => {
  it('and are not taken for unknown settings by the configuration', async () => {
    const { readEnvOverrides } = await import('../../src/core/config/env.js');
    const launcher = { STREAMCTL_NODE: process.execPath, STREAMCTL_NODE_ARGS: '--cpu-prof', STREAMCTL_SEMI_SPACE_MB: '8' };
    assert.deepEqual(readEnvOverrides(launcher).problems, []);
    assert.equal(readEnvOverrides({ ...launcher, STREAMCTL_BOGUS: '1' }).problems.length, 1, 'an unknown one still is');
  });
});
