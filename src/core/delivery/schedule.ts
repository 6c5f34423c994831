import { type Unit, Watermark } from './plan.js';

/**
 * Runs the units of one partition's batch (./plan.ts): in order, up to `inFlight` at once,
 * each after the earlier units of its rows, and reports the leading finished units so the
 * caller commits offsets that never pass an unfinished record. Knows nothing of Kafka or
 * sinks: the runner gives it three hooks.
 */
export interface ScheduleHooks {
  /**
   * Delivers one unit. True: every record of it is in the sink or in the DLQ. False: it
   * could not be delivered now (circuit open, cancelled) and must be read again; nothing
   * after it is started then.
   */
  run(unit: number, signal: AbortSignal): Promise<boolean>;
  /** The leading finished units grew to `done`. A throw stops the schedule. */
  progress(done: number): Promise<void>;
  /**
   * Called after every unit that settles and at least every `tickMs` (heartbeats, "is this
   * partition still mine"). A throw stops the schedule and aborts the units' signal.
   */
  tick(): Promise<void>;
}

export interface ScheduleResult {
  /** How many leading units finished (in the sink or the DLQ). */
  done: number;
  /** The first error of a hook, once every started unit has settled. */
  error?: unknown;
}

export async function runSchedule(units: readonly Unit[], inFlight: number, tickMs: number, hooks: ScheduleHooks): Promise<ScheduleResult> {
  if (!Number.isInteger(inFlight) || inFlight < 1) throw new RangeError(`inFlight must be a positive integer, got ${inFlight}`);
  const watermark = new Watermark(units.length);
  const outcomes: Array<Promise<boolean>> = [];
  const abort = new AbortController();
  let running = 0;
  let next = 0;
  let stopping = false;
  let failed = false;
  let error: unknown;
  const fail = (err: unknown) => {
    if (!failed) error = err;
    failed = true;
    stopping = true;
    abort.abort();
  };

  // Wakes the loop below when a unit settles; `woken` keeps a wake-up that came first.
  let wake: (() => void) | undefined;
  let woken = false;
  const notify = () => {
    if (wake) wake();
    else woken = true;
  };
  const settledOrTick = () =>
    new Promise<void>((resolve) => {
      if (woken) {
        woken = false;
        resolve();
        return;
      }
      const timer = setTimeout(done, tickMs);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        woken = false;
        resolve();
      }
      wake = done;
    });

  const launch = (u: number) => {
    running++;
    const unit = units[u]!;
    outcomes[u] = (async () => {
      // Earlier units of the same rows first; if one of them was not delivered, neither is this.
      const before = await Promise.all(unit.after.map((d) => outcomes[d]!));
      if (stopping || before.some((ok) => !ok)) return false;
      return hooks.run(u, abort.signal);
    })()
      .then(
        (ok) => {
          if (ok) watermark.finish(u);
          else stopping = true;
          return ok;
        },
        (err: unknown) => {
          fail(err);
          return false;
        },
      )
      .finally(() => {
        running--;
        notify();
      });
  };

  let reported = 0;
  for (;;) {
    while (!stopping && next < units.length && running < inFlight) launch(next++);
    if (running === 0 && (stopping || next >= units.length)) break;
    await settledOrTick();
    if (failed) continue;
    try {
      await hooks.tick();
      if (watermark.done > reported) {
        reported = watermark.done;
        await hooks.progress(reported);
      }
    } catch (err) {
      fail(err);
    }
  }
  return failed ? { done: watermark.done, error } : { done: watermark.done };
}
