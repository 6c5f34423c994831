import type { AnySinkPlugin } from '../sinks/plugin.js';
import { SINK_PLUGINS, type SinkName } from '../sinks/registry.js';
import type { BackfillStatus } from './backfill.js';
import type { CaptureStatus } from './capture.js';
import type { CircuitsStatus } from './circuits.js';
import type { StuckComponent } from './progress.js';
import type { StatusWarning } from './warnings.js';

/** What `status` checks: the source, Kafka, then every registered sink (src/core/sinks/registry.ts). */
export const componentNames = (plugins: readonly AnySinkPlugin[] = SINK_PLUGINS): string[] => ['postgres', 'kafka', ...plugins.map((p) => p.name)];
export type ComponentName = 'postgres' | 'kafka' | SinkName;
export const COMPONENTS = componentNames() as readonly ComponentName[];

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
