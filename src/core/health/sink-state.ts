import type { Config } from '../config/types.js';
import type { StreamReady } from './stream-ready.js';
import type { ReadinessProblem } from './types.js';

/**
 * What the running `stream` of this pipeline says on /ready about sinks that lost their
 * state (being rebuilt, or refusing to go on): each is a readiness problem, so `status`
 * exits 4 with the rebuild's progress or what to run. None when no stream of it answers.
 */
export function sinkStateProblems(config: Config, ready: { answered: boolean; body: StreamReady }): ReadinessProblem[] {
  if (!ready.answered || ready.body.pipeline !== config.pipeline.id) return [];
  return (ready.body.sinks ?? []).map((s) => ({ component: s.sink, problem: s.problem, fix: s.fix }));
}
