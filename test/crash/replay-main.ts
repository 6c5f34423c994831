import { runReplayCrash } from './replay-crash.js';

/**
 * `npm run crash:replay`: the full proof. 1,800 rows dead-lettered in all three sinks
 * (5,400 letters) plus 5 % written twice, 12 SIGKILLs of `replay-dlq --execute`, then runs
 * until done. Last line: one JSON object.
 */
const result = await runReplayCrash({
  rows: Number(process.env['CRASH_ROWS'] ?? 1800),
  updateEvery: 10,
  duplicateShare: 0.05,
  kills: Number(process.env['CRASH_KILLS'] ?? 12),
  killWindowMs: [2500, 7000],
  batchSize: 50,
  rate: 100,
  log: (line) => process.stderr.write(`crash:replay ${line}\n`),
});
process.stderr.write(
  `crash:replay ${result.seconds} s, ${result.runs} replay runs, ${result.copies_written} duplicate letters written; redis equals postgres: ${result.redis_matches_postgres}; ` +
    `mismatches: ${JSON.stringify(result.mismatches)} (machine shared by PostgreSQL, Kafka, Redis, the BigQuery emulator, stream, replay-dlq and five other engineers' tests)\n`,
);
const { kills, letters, replayed, superseded, lost, duplicates, open_after } = result;
process.stdout.write(`${JSON.stringify({ kills, letters, replayed, superseded, lost, duplicates, open_after })}\n`);
process.exitCode = lost === 0 && duplicates === 0 && open_after === 0 && result.mismatches.length === 0 && result.redis_matches_postgres ? 0 : 1;
