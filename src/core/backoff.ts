import { ExponentialBackoff, noJitterGenerator, type IBackoff } from 'cockatiel';

/**
 * The delays of a loop that starts something again after a failure (capture interrupted,
 * a sink that cannot start): cockatiel's exponential backoff, the same library the
 * delivery retries use (delivery/policies.ts), without jitter so the `retry_in_ms` a log
 * line shows is the wait that follows. Each call gives the next delay: initialDelayMs,
 * twice that, and so on, never more than maxDelayMs.
 */
export function backoffDelays(policy: { initialDelayMs: number; maxDelayMs: number }): () => number {
  const factory = new ExponentialBackoff({ generator: noJitterGenerator, initialDelay: policy.initialDelayMs, maxDelay: policy.maxDelayMs });
  let step: IBackoff<unknown> | undefined;
  return () => {
    step = step ? step.next(undefined) : factory.next();
    return step.duration;
  };
}
