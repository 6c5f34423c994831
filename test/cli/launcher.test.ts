import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN } from '../helpers/run-cli.js';

// A stand-in for node that prints what the launcher gave it: the launcher's choice is the
// subject here, and running the real node for it would only hide that choice.
const dir = mkdtempSync(path.join(os.tmpdir(), 'streamctl-launcher-'));
const fakeNode = path.join(dir, 'node');
writeFileSync(fakeNode, '#!/bin/sh\necho "MALLOC_ARENA_MAX=$MALLOC_ARENA_MAX MALLOC_MMAP_THRESHOLD_=$MALLOC_MMAP_THRESHOLD_ MALLOC_TRIM_THRESHOLD_=$MALLOC_TRIM_THRESHOLD_ $*"\n');
chmodSync(fakeNode, 0o755);
after(() => rmSync(dir, { recursive: true, force: true }));

function launched(args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(BIN, args, { env: { PATH: process.env['PATH'], STREAMCTL_NODE: fakeNode, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const semiSpace = (line: string): number => Number(/--max-semi-space-size=(\d+)/.exec(line)?.[1]);

describe('bin/streamctl as a program: its launcher', () => {
  it('execs node on itself with the arguments as given, and glibc malloc settings', () => {
    const line = launched(['stream', '--role', 'deliver', '--sink', 'redis']);
    assert.ok(line.startsWith('MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072 '), line);
    assert.ok(line.endsWith(`${BIN} stream --role deliver --sink redis`), line);
  });

  it('gives a stream that delivers an 8 MiB young generation', () => {
    for (const args of [['stream'], ['stream', '--role', 'all'], ['stream', '--role=deliver'], ['--config', 'x.json', 'stream', '--role', 'deliver', '--sink', 'http']]) assert.equal(semiSpace(launched(args)), 8, args.join(' '));
  });

  it('keeps 4 MiB for capture alone, backfill and the other commands (their RSS)', () => {
    for (const args of [['stream', '--role', 'capture'], ['stream', '--role=capture'], ['backfill', '--table', 'stream'], ['status'], ['replay-dlq'], ['verify'], ['stress-test', '--spawn'], ['--version'], []]) assert.equal(semiSpace(launched(args)), 4, args.join(' '));
  });

  it('takes STREAMCTL_SEMI_SPACE_MB over its own choice', () => {
    assert.equal(semiSpace(launched(['stream'], { STREAMCTL_SEMI_SPACE_MB: '16' })), 16);
    assert.equal(semiSpace(launched(['backfill'], { STREAMCTL_SEMI_SPACE_MB: '2' })), 2);
  });

  it('puts STREAMCTL_NODE_ARGS after its own flags, word by word, never as file names', () => {
    const line = launched(['stream'], { STREAMCTL_NODE_ARGS: '--cpu-prof --max-semi-space-size=16 *' });
    assert.match(line, /--max-semi-space-size=8 --cpu-prof --max-semi-space-size=16 \* /);
  });

  it('runs the real program, with node from PATH', () => {
    const r = spawnSync(BIN, ['--version'], { env: { PATH: `${path.dirname(process.execPath)}:${process.env['PATH']}` }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
  });
});
