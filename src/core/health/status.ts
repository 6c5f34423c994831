import type { Config } from '../config/types.js';
import type { Logger } from '../logger.js';
import { withTimeout } from '../timeout.js';
import { probeComponents } from './components.js';
import { backfillStatus, type BackfillStatus } from './backfill.js';
import { captureStatus, type CaptureStatus } from './capture.js';
import { circuitsStatus } from './circuits.js';
import { historyWarnings, slotWarnings, streamStuck } from './warnings.js';
import { sinkStateProblems } from './sink-state.js';
import { readStreamReady } from './stream-ready.js';
import type { StatusReport } from './types.js';

export interface StatusOptions {
  /** Per component; a component that has not answered by then is down. */
  timeoutMs: number;
}

/** Probes every component at once; never throws: a failure is a `down` component. */
export async function checkStatus(config: Config, logger: Logger, options: StatusOptions): Promise<StatusReport> {
  const results = await probeComponents(config, logger, options.timeoutMs);
  // One read of the stream's /ready serves the stuck, rebuild and circuit views.
  const ready = await readStreamReady(config, Math.min(2000, options.timeoutMs));
  const circuits = circuitsStatus(config, options.timeoutMs, ready);
  const stuck = streamStuck(config, ready);
  const sinkStates = sinkStateProblems(config, ready);
  const [capture, backfill, warnings] = await Promise.all([
    withTimeout(captureStatus(config, logger), options.timeoutMs, 'capture status').catch(
      (err: Error): CaptureStatus => ({ pipeline: config.pipeline.id, slot: null, checkpoint: null, delivery: null, errors: [err.message] }),
    ),
    withTimeout(backfillStatus(config, logger), options.timeoutMs, 'backfill status').catch((err: Error): BackfillStatus => ({ runs: [], errors: [err.message] })),
    // PostgreSQL down is reported above; its warnings are then unknown, not empty.
    withTimeout(slotWarnings(config), options.timeoutMs, 'slot warnings').catch(() => []),
  ]);
  return {
    capture,
    backfill,
    circuits: await circuits,
    checked_at: new Date().toISOString(),
    components: Object.fromEntries(results.map(([name, r]) => [name, r.health])) as StatusReport['components'],
    problems: [...results.flatMap(([, r]) => r.problems), ...sinkStates],
    warnings: [...warnings, ...historyWarnings(config, ready)],
    stuck,
  };
}
