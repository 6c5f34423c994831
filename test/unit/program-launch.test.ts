import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { launchOf, launchOfShebang } from '../../src/core/program-launch.js';

const root = new URL('../../../', import.meta.url);

describe('starting streamctl as its shebang would', () => {
  it('reads the variables and node flags of an env -S line', () => {
    assert.deepEqual(launchOfShebang('#!/usr/bin/env -S A_=1 B=x=y node --max-semi-space-size=4 --foo'), { env: { A_: '1', B: 'x=y' }, nodeFlags: ['--max-semi-space-size=4', '--foo'] });
    assert.deepEqual(launchOfShebang('#!/usr/bin/env node'), { env: {}, nodeFlags: [] });
    assert.deepEqual(launchOfShebang('// not a shebang'), { env: {}, nodeFlags: [] });
  });

  it("bin/streamctl's settings are in the Docker image too (its ENTRYPOINT is node bin/streamctl)", () => {
    const launch = launchOf(new URL('bin/streamctl', root).pathname);
    assert.ok(launch.nodeFlags.length > 0 && Object.keys(launch.env).length > 0, 'bin/streamctl sets node flags and variables');
    const dockerfile = readFileSync(new URL('docker/Dockerfile', root), 'utf8');
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    for (const [name, value] of Object.entries(launch.env)) assert.match(runtime, new RegExp(`\\b${name}=${value}\\b`), `${name}=${value} in the runtime stage's ENV`);
    const nodeOptions = /NODE_OPTIONS=("[^"]*"|\S+)/.exec(runtime)?.[1]?.replace(/"/g, '').split(/\s+/) ?? [];
    for (const flag of launch.nodeFlags) assert.ok(nodeOptions.includes(flag), `${flag} in NODE_OPTIONS (${nodeOptions.join(' ')})`);
  });
});
