import type { Config } from '../config/types.js';
import type { SinkStateProblem } from '../delivery/sink-state.js';
import type { ReadinessProblem } from './types.js';

/**
 * What the running `stream` of this pipeline says on /ready about sinks that lost their
 * state (being rebuilt, or refusing to go on): each is a readiness problem, so `status`
 * exits 4 with the rebuild's progress or what to run. None when no stream answers.
 */
export async function sinkStateProblems(config: Config, timeoutMs: number): Promise<ReadinessProblem[]> {
  try {
    const res = await fetch(`http://${config.metrics.host}:${config.metrics.port}/ready`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as { pipeline?: string; sinks?: SinkStateProblem[] };
    if (body.pipeline !== config.pipeline.id) return [];
    return (body.sinks ?? []).map((s) => ({ component: s.sink, problem: s.problem, fix: s.fix }));
  } catch {
    return [];
  }
}
