import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry, type CircuitBreakerPolicy, type RetryPolicy } from 'cockatiel';
import type { BreakerPolicy, RetryPolicy as RetryConfig } from '../config/types.js';

/** Thrown by an attempt that left some events undelivered but retryable. */
export class RetryableWriteError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
    this.name = 'RetryableWriteError';
  }
}

/** Retries with exponential backoff (cockatiel), only for RetryableWriteError. */
export function retryPolicyFor(config: RetryConfig): RetryPolicy {
  const retries = config.retries === 'forever' ? Number.MAX_SAFE_INTEGER : config.retries;
  return retry(
    handleWhen((err) => err instanceof RetryableWriteError),
    { maxAttempts: retries, backoff: new ExponentialBackoff({ initialDelay: config.initialDelayMs, maxDelay: config.maxDelayMs }) },
  );
}

/**
 * Opens after `consecutiveFailures` deliveries that ran out of retries; while open the
 * sink's partitions are paused (its lag grows; alerts fire) instead of flooding the DLQ;
 * after `halfOpenAfterMs` one probe decides whether it closes again.
 */
export function breakerFor(config: BreakerPolicy): CircuitBreakerPolicy {
  return circuitBreaker(
    handleWhen((err) => err instanceof RetryableWriteError),
    { halfOpenAfter: config.halfOpenAfterMs, breaker: new ConsecutiveBreaker(config.consecutiveFailures) },
  );
}
