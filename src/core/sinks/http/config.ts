import path from 'node:path';
import type { BreakerPolicy, RetryPolicy } from '../../config/types.js';
import { bool, breaker, intRange, millis, object, retry, str, url, urlOrEmpty } from '../../schema-kit.js';
import { LOCAL_STACK, PROJECT_ROOT } from '../../local-stack.js';

export interface HttpSinkConfig {
  enabled: boolean;
  url: string;
  /** Optional GET endpoint for `status`; empty means a HEAD of `url`. */
  healthUrl: string;
  hmacKey: string;
  hmacKeyFile: string;
  timeoutMs: number;
  batchSize: number;
  /** Requests in flight at once (one event each by default): the sink's throughput is about this / the endpoint's answer time. */
  concurrency: number;
  retry: RetryPolicy;
  breaker: BreakerPolicy;
}

export const HTTP_SCHEMA = object({
  enabled: bool,
  url,
  healthUrl: urlOrEmpty,
  hmacKey: str(),
  hmacKeyFile: str(),
  timeoutMs: millis(100, 600_000),
  batchSize: intRange(1, 10_000),
  concurrency: intRange(1, 1024),
  retry: retry(false),
  breaker: breaker(),
});

/** ARCHITECTURE.md: HTTP 3 retries and a circuit breaker (5 consecutive exhausted deliveries). */
export const httpDefaults = (): HttpSinkConfig => ({
  enabled: true,
  url: LOCAL_STACK.http.url,
  healthUrl: '',
  hmacKey: '',
  // Absolute, so the local stack's key file is found from any cwd.
  hmacKeyFile: path.join(PROJECT_ROOT, LOCAL_STACK.http.hmacKeyFile),
  timeoutMs: 10000,
  batchSize: 1,
  concurrency: 16,
  retry: { retries: 3, initialDelayMs: 200, maxDelayMs: 10000 },
  breaker: { consecutiveFailures: 5, halfOpenAfterMs: 30000 },
});

export function httpProblems(http: HttpSinkConfig): string[] {
  const problems: string[] = [];
  if (http.enabled && !http.hmacKey && !http.hmacKeyFile) {
    problems.push('sinks.http.hmacKey: the HTTP sink signs every request: set hmacKey or hmacKeyFile (or disable the sink)');
  }
  if (http.hmacKey && http.hmacKeyFile) {
    problems.push('sinks.http.hmacKeyFile: set either hmacKey or hmacKeyFile, not both');
  }
  return problems;
}
