import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './run-cli.js';

/** `streamctl stream --role capture` as its own process, as an operator runs it. */
export function startCapturer(env: NodeJS.ProcessEnv, pipeStderr = false): ChildProcess {
  return spawn(process.execPath, [BIN, 'stream', '--role', 'capture'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', pipeStderr ? 'pipe' : 'inherit'],
  });
}

/** Everything the process wrote on stderr so far (only when started with pipeStderr). */
export function collectStderr(child: ChildProcess): { text: string } {
  const out = { text: '' };
  child.stderr?.on('data', (d: Buffer) => (out.text += d.toString()));
  return out;
}

/** Resolves once the capturer says it is streaming (its signal handlers are in place by then). */
export function streaming(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stderr?.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('capture starting')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the capturer exited with ${code} before streaming: ${text.slice(-2000)}`)));
  });
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/**
 * The child's exit code, or `still running N s after <what>` once `ms` passed. The timer is
 * cleared when the child exits first: left running, it kept the test file's process alive
 * for the rest of its two minutes after every test had passed.
 */
export async function exitedWithin(child: ChildProcess, ms: number, what: string): Promise<number | null | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`still running ${ms / 1000} s after ${what}`), ms)));
  try {
    return await Promise.race([exited(child), late]);
  } finally {
    clearTimeout(timer);
  }
}
