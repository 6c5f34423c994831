import { readFileSync } from 'node:fs';

/** How to start a program from node code as it starts when installed: command, arguments, environment to add. */
export interface ProgramSpawn {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * bin/streamctl run as a program, so its launcher picks node's flags as it does for a user
 * (the young generation by role, glibc's malloc settings: see there). `node bin/streamctl`
 * would skip the launcher and silently measure a process no user runs.
 *
 * It runs this process's node (STREAMCTL_NODE). `nodeArgs` (a bench's profiling flags, say;
 * Node 20 refuses --cpu-prof in NODE_OPTIONS) go after the launcher's own flags
 * (STREAMCTL_NODE_ARGS), so a young-generation size among them wins over its choice.
 */
export function programSpawn(bin: string, args: readonly string[], nodeArgs: readonly string[] = []): ProgramSpawn {
  const env: Record<string, string> = { STREAMCTL_NODE: process.execPath };
  if (nodeArgs.length > 0) env['STREAMCTL_NODE_ARGS'] = nodeArgs.join(' ');
  return { command: bin, args: [...args], env };
}

/** The node flags of a running process (its command line up to the script), for a bench to say what it measured; null if unreadable. */
export function nodeFlagsOf(pid: number): string[] | null {
  try {
    const words = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const flags: string[] = [];
    for (const word of words.slice(1)) {
      if (!word.startsWith('-')) break;
      flags.push(word);
    }
    return flags;
  } catch {
    return null;
  }
}
