import { readFileSync } from 'node:fs';

/** What starting a program the way its shebang would takes, when it is started as `node <bin>`. */
export interface Launch {
  env: Record<string, string>;
  nodeFlags: string[];
}

/**
 * The variables and node flags a `#!/usr/bin/env -S NAME=value node --flag ...` line gives
 * the program. bin/streamctl's (memory settings: see there) apply only when it runs as a
 * program (npm's bin link, PATH, systemd); `stress-test --spawn` and the benches start it as
 * `node bin/streamctl`, which would silently measure a process no user runs.
 */
export function launchOf(bin: string): Launch {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  return launchOfShebang(first);
}

export function launchOfShebang(line: string): Launch {
  if (!line.startsWith('#!')) return { env: {}, nodeFlags: [] };
  const words = line.replace(/^#!\S*env\s+(-S\s+)?/, '').split(/\s+/).filter(Boolean);
  const node = words.findIndex((w) => w === 'node' || w.endsWith('/node'));
  if (node === -1) return { env: {}, nodeFlags: [] };
  const env = Object.fromEntries(words.slice(0, node).filter((w) => w.includes('=')).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  return { env, nodeFlags: words.slice(node + 1).filter((w) => w.startsWith('--')) };
}
