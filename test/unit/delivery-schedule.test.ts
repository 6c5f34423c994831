import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planUnits, Watermark } from '../../src/core/delivery/plan.js';
import { runSchedule, type ScheduleHooks } from '../../src/core/delivery/schedule.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('delivery plan: units and their order', () => {
  it('cuts records into units and makes each wait for the latest earlier unit of its rows', () => {
    const units = planUnits(['a', 'b', 'a', 'c', 'b', 'a', 'd'], 2);
    assert.deepEqual(
      units.map((u) => [u.from, u.to, u.after]),
      [
        [0, 2, []],
        [2, 4, [0]], // a
        [4, 6, [0, 1]], // b from unit 0, a latest in unit 1
        [6, 7, []],
      ],
    );
  });

  it('one record per unit: a chain per row, nothing between rows', () => {
    const units = planUnits(['a', 'b', 'a', 'a'], 1);
    assert.deepEqual(
      units.map((u) => u.after),
      [[], [], [0], [2]],
    );
    assert.throws(() => planUnits(['a'], 0), /positive integer/);
  });

  it('the watermark covers only leading finished units', () => {
    const w = new Watermark(4);
    w.finish(1);
    w.finish(3);
    assert.equal(w.done, 0);
    w.finish(0);
    assert.equal(w.done, 2);
    w.finish(2);
    assert.equal(w.done, 4);
    assert.ok(w.complete);
  });
});

describe('delivery schedule', () => {
  /** Hooks that record what happened; `delays[u]` is how long unit u takes, `verdict[u]` its result. */
  function recorder(delays: number[], verdict: Array<boolean | Error> = []) {
    const log: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const progress: number[] = [];
    const hooks: ScheduleHooks = {
      run: async (u) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        log.push(`start ${u}`);
        await sleep(delays[u] ?? 0);
        running--;
        log.push(`end ${u}`);
        const v = verdict[u] ?? true;
        if (v instanceof Error) throw v;
        return v;
      },
      progress: async (done) => {
        progress.push(done);
        log.push(`progress ${done}`);
      },
      tick: async () => {},
    };
    return { hooks, log, progress, max: () => maxRunning };
  }

  it('runs units concurrently up to the bound, keeps one row in order, and a slow row holds back only itself', async () => {
    // Unit 0 (row a) is slow; units 1-5 are other rows and finish long before it; unit 6 is row a again.
    const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'a'];
    const r = recorder([200, 5, 5, 5, 5, 5, 5]);
    const result = await runSchedule(planUnits(keys, 1), 4, 1000, r.hooks);
    assert.deepEqual(result, { done: 7 });
    assert.ok(r.max() <= 4, `at most 4 at once, saw ${r.max()}`);
    assert.ok(r.log.indexOf('end 5') < r.log.indexOf('end 0'), 'other rows finished while row a was slow');
    assert.ok(r.log.indexOf('start 6') > r.log.indexOf('end 0'), "row a's second event waited for its first");
    // Offsets never pass unit 0 before it finished: no progress is reported until it ends.
    const firstProgress = r.log.findIndex((l) => l.startsWith('progress'));
    assert.ok(firstProgress > r.log.indexOf('end 0'), r.log.join(', '));
    assert.equal(r.progress.at(-1), 7);
  });

  it('one unit at a time when asked (a sink that stores offsets), reporting each', async () => {
    const r = recorder([5, 5, 5]);
    await runSchedule(planUnits(['a', 'b', 'c'], 1), 1, 1000, r.hooks);
    assert.equal(r.max(), 1);
    assert.deepEqual(r.progress, [1, 2, 3]);
  });

  it('an undelivered unit (circuit open) stops what comes after and the watermark stays before it', async () => {
    // Unit 1 comes back undelivered while unit 0 still runs: unit 0 finishes, nothing more starts.
    const r = recorder([30, 5, 5, 5, 5], [true, false, true, true, true]);
    const result = await runSchedule(planUnits(['a', 'b', 'c', 'd', 'e'], 1), 2, 1000, r.hooks);
    assert.equal(result.done, 1);
    assert.equal(result.error, undefined);
    assert.ok(r.log.includes('end 0'));
    assert.ok(!r.log.includes('start 2'), 'nothing is started after a unit came back undelivered');
  });

  it("a unit whose row's earlier unit was not delivered is not run", async () => {
    const r = recorder([30, 5, 5], [false, true, true]);
    const result = await runSchedule(planUnits(['a', 'b', 'a'], 1), 3, 1000, r.hooks);
    assert.equal(result.done, 0);
    assert.ok(!r.log.includes('start 2'));
  });

  it('a failing tick (rebalance) aborts the units, waits for them, and returns the error', async () => {
    let aborted = 0;
    let ticks = 0;
    const hooks: ScheduleHooks = {
      run: async (_u, signal) => {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 5000);
          signal.addEventListener('abort', () => {
            aborted++;
            clearTimeout(t);
            resolve();
          });
        });
        return false;
      },
      progress: async () => {},
      tick: async () => {
        if (++ticks === 2) throw new Error('REBALANCE_IN_PROGRESS');
      },
    };
    const started = Date.now();
    const result = await runSchedule(planUnits(['a', 'b', 'c'], 1), 3, 20, hooks);
    assert.match(String(result.error), /REBALANCE_IN_PROGRESS/);
    assert.equal(aborted, 3);
    assert.ok(Date.now() - started < 1000, 'ticks come on a timer even when no unit settles');
  });

  it('an error thrown by a unit (the DLQ unreachable) stops the schedule and comes back', async () => {
    const r = recorder([5, 5, 5], [true, new Error('dlq down'), true]);
    const result = await runSchedule(planUnits(['a', 'b', 'c'], 1), 1, 1000, r.hooks);
    assert.equal(result.done, 1);
    assert.match(String(result.error), /dlq down/);
  });
});
