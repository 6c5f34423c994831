import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where `scripts/stack` puts each server on loopback. Odd ports on purpose, so the
 * local stack never collides with a PostgreSQL, Kafka or Redis already on the machine.
 * `scripts/stack` reads the same numbers from `scripts/stack.env`; keep the two in step
 * (test/unit/local-stack.test.ts checks it).
 */
export const LOCAL_STACK = {
  postgres: { host: '127.0.0.1', port: 54329, user: 'streamctl', password: 'local-stack-secret', database: 'streamctl' },
  kafka: { brokers: ['127.0.0.1:19092'] },
  redis: { host: '127.0.0.1', port: 16379 },
  bigquery: { apiEndpoint: 'http://127.0.0.1:19050', projectId: 'streamctl-local', dataset: 'streamctl' },
  http: { url: 'http://127.0.0.1:18080/events', hmacKeyFile: '.stack/http/hmac.key' },
  metrics: { port: 19464 },
  /** The stack's Prometheus (alert rules loaded, targets in .stack/prometheus/targets/). */
  prometheus: { url: 'http://127.0.0.1:19090' },
} as const;

/** The repository root (this file is src/core/local-stack.ts, or dist/src/core/local-stack.js once built). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
