/**
 * What the test receiver answers instead of 200, to exercise the HTTP sink's retries,
 * breaker and DLQ. Either a share of requests (`rates`, drawn per request) or an exact
 * script for the next requests (`next`, consumed in order), which tests prefer because it
 * is deterministic.
 */
export type Fault = '5xx' | '429' | '4xx' | 'hang';
export const FAULTS: readonly Fault[] = ['5xx', '429', '4xx', 'hang'];

export interface FaultPlan {
  rates: Partial<Record<Fault, number>>;
  next: Fault[];
  retryAfterSeconds: number;
}

export const noFaults = (): FaultPlan => ({ rates: {}, next: [], retryAfterSeconds: 1 });

export function parseFaultPlan(input: unknown): FaultPlan | string {
  if (typeof input !== 'object' || input === null) return 'body must be a JSON object';
  const body = input as Record<string, unknown>;
  const plan = noFaults();
  if (body['rates'] !== undefined) {
    if (typeof body['rates'] !== 'object' || body['rates'] === null) return 'rates must be an object';
    let sum = 0;
    for (const [name, rate] of Object.entries(body['rates'] as Record<string, unknown>)) {
      if (!FAULTS.includes(name as Fault)) return `unknown fault '${name}' (known: ${FAULTS.join(', ')})`;
      if (typeof rate !== 'number' || rate < 0 || rate > 1) return `rates.${name} must be a number 0-1`;
      plan.rates[name as Fault] = rate;
      sum += rate;
    }
    if (sum > 1) return 'rates must add up to at most 1';
  }
  if (body['next'] !== undefined) {
    if (!Array.isArray(body['next']) || !body['next'].every((f) => FAULTS.includes(f as Fault))) {
      return `next must be a list of ${FAULTS.join(', ')}`;
    }
    plan.next = [...(body['next'] as Fault[])];
  }
  if (body['retryAfterSeconds'] !== undefined) {
    const s = body['retryAfterSeconds'];
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 0 || s > 3600) return 'retryAfterSeconds must be an integer 0-3600';
    plan.retryAfterSeconds = s;
  }
  return plan;
}

/** The fault for the next request, or null to answer normally. `draw` is in [0, 1). */
export function pickFault(plan: FaultPlan, draw: number): Fault | null {
  const scripted = plan.next.shift();
  if (scripted) return scripted;
  let edge = 0;
  for (const fault of FAULTS) {
    edge += plan.rates[fault] ?? 0;
    if (draw < edge) return fault;
  }
  return null;
}
