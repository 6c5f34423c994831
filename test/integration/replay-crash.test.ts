import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runReplayCrash } from '../crash/replay-crash.js';

// The short form of `npm run crash:replay`: fewer letters and kills, the same checks. Kills
// 4-7 s into each run (2.5-4.5 s failed once, "only 2 runs resolved letters", on a machine
// whose host took 30-50 % of its CPU: a run killed before its first batch shows nothing); the
// killed runs' rate is capped from the window's end, so they still cannot finish the work.
it('replay-dlq --execute survives SIGKILL: every letter resolved once, none lost, none open; Redis equals PostgreSQL', { timeout: 600_000 }, async () => {
  const r = await runReplayCrash({ rows: 200, updateEvery: 10, duplicateShare: 0.1, kills: 3, killWindowMs: [4000, 7000], batchSize: 20, rate: 60 });
  assert.ok(r.kills >= 3, `only ${r.kills} kills`);
  assert.ok(r.runs_with_progress >= 3, `only ${r.runs_with_progress} runs resolved letters: the kills did not land part way`);
  assert.equal(r.letters, 600);
  assert.deepEqual(r.mismatches, []);
  assert.equal(r.redis_matches_postgres, true);
  assert.deepEqual(
    { lost: r.lost, duplicates: r.duplicates, open_after: r.open_after, replayed: r.replayed, superseded: r.superseded },
    { lost: 0, duplicates: 0, open_after: 0, replayed: 600 - 40, superseded: 40 },
  );
});
