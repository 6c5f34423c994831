/**
 * Rejects with `what timed out after N ms` if `work` has not settled in time. `what` may be
 * a function, read at the deadline (to say where the work was); `onTimeout` runs then, for a
 * caller that must stop the work it gives up on. Work that fails in time rejects as itself.
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string | (() => string), onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const text = typeof what === 'string' ? what : what();
      onTimeout?.();
      reject(new Error(`${text} timed out after ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits `ms`, or less when `signal` aborts first (so a stop never waits out a backoff or a schedule). */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
