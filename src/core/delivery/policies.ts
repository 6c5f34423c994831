import { circuitBreaker, CircuitState, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry, type CircuitBreakerPolicy, type RetryPolicy } from 'cockatiel';
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

/** Thrown by a unit given up without a verdict (cancelled by a rebalance or a stop). */
export class UnitCancelledError extends Error {
  constructor() {
    super('the unit was cancelled before it had a verdict');
    this.name = 'UnitCancelledError';
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
  // cockatiel closes the circuit when a half-open probe throws an error the policy does not
  // handle ("task failed successfully"). A probe cancelled by a rebalance proved nothing, so
  // while half-open it counts as a failure (the circuit opens again and another probe
  // follows after the delay); while closed it stays neutral, as before.
  const policy: CircuitBreakerPolicy = circuitBreaker(
    handleWhen((err) => err instanceof RetryableWriteError || (err instanceof UnitCancelledError && policy.state === CircuitState.HalfOpen)),
    { halfOpenAfter: config.halfOpenAfterMs, breaker: new ConsecutiveBreaker(config.consecutiveFailures) },
  );
  return policy;
}
