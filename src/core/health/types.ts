import type { BackfillStatus } from './backfill.js';
import type { CaptureStatus } from './capture.js';
import type { CircuitsStatus } from './circuits.js';
import type { StuckComponent } from './progress.js';
import type { StatusWarning } from './warnings.js';

export const COMPONENTS = ['postgres', 'kafka', 'redis', 'bigquery', 'http'] as const;
export type ComponentName = (typeof COMPONENTS)[number];

export interface ComponentHealth {
  state: 'up' | 'down' | 'disabled';
  /** Where it was reached (never with credentials). */
  endpoint: string;
  /** Round-trip time of one cheap request after connecting, in milliseconds. */
  rtt_ms: number | null;
  detail: Record<string, unknown>;
  error?: string;
}

/** Something reachable but not ready for streamctl, with how to fix it. */
export interface ReadinessProblem {
  component: ComponentName;
  problem: string;
  fix: string;
}

export interface StatusReport {
  checked_at: string;
  components: Record<ComponentName, ComponentHealth>;
  problems: ReadinessProblem[];
  capture: CaptureStatus;
  backfill: BackfillStatus;
  /** Each sink's circuit breaker, read from the running stream's /metrics. */
  circuits?: CircuitsStatus;
  /** Fine now, dangerous later (inactive slots, unbounded WAL), each with its fix. */
  warnings: StatusWarning[];
  /** What the running stream of this pipeline reports stuck; null when none answers on metrics.port. */
  stuck: StuckComponent[] | null;
}

export interface ProbeResult {
  health: ComponentHealth;
  problems: ReadinessProblem[];
}
