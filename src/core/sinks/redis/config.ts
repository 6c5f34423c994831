import type { BreakerPolicy, RetryPolicy } from '../../config/types.js';
import { bool, breaker, hostName, intRange, object, port, retry, str } from '../../schema-kit.js';
import { LOCAL_STACK } from '../../local-stack.js';

export interface RedisSinkConfig {
  enabled: boolean;
  host: string;
  port: number;
  password: string;
  db: number;
  keyPrefix: string;
  /** The read model came back without its state (flushed, restarted empty): rebuild it on its own, or stop and say what to run. */
  rebuild: 'auto' | 'manual';
  retry: RetryPolicy;
  breaker: BreakerPolicy;
}

export const REDIS_SCHEMA = object({
  enabled: bool,
  host: hostName,
  port,
  password: str(),
  db: intRange(0, 15),
  keyPrefix: str(),
  rebuild: { enum: ['auto', 'manual'], errorMessage: 'must be auto or manual' },
  retry: retry(false),
  breaker: breaker(),
});

/** ARCHITECTURE.md: Redis 3 retries with exponential backoff; the circuit opens when they run out. */
export const redisDefaults = (): RedisSinkConfig => ({
  enabled: true,
  host: LOCAL_STACK.redis.host,
  port: LOCAL_STACK.redis.port,
  password: '',
  db: 0,
  keyPrefix: 'streamctl:',
  rebuild: 'auto',
  retry: { retries: 3, initialDelayMs: 100, maxDelayMs: 5000 },
  breaker: { consecutiveFailures: 1, halfOpenAfterMs: 10000 },
});

/** Where `status` says the sink is reached (never with credentials). */
export const redisEndpoint = (c: RedisSinkConfig): string => `${c.host}:${c.port}/${c.db}`;
