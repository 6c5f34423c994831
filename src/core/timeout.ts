/** Rejects with `what timed out after Nms` if `work` has not settled in time. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An AbortSignal that aborts with a TimeoutError after `ms`, or as soon as `parent` aborts.
 * Call `clear()` once the guarded work is over.
 *
 * Not `AbortSignal.any([AbortSignal.timeout(ms), parent])`: in Node 20 the timeout signal
 * inside such a composite is only weakly held and can be garbage-collected before it fires
 * (nodejs/node#57736), so under GC pressure a request to a hanging upstream waited until
 * the upstream dropped the socket instead of `ms`. Here the timer holds the controller.
 */
export function deadlineSignal(ms: number, parent?: AbortSignal): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')), ms);
  const onParentAbort = () => controller.abort(parent?.reason);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}
