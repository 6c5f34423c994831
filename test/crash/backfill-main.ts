import { runBackfillCrash } from './backfill-crash.js';

/**
 * `npm run crash:backfill`: the full proof. 500,000 rows backfilled while a workload
 * changes them and `stream` runs, the backfill SIGKILLed 10 times and resumed. Last line:
 * one JSON object.
 */
const result = await runBackfillCrash({
  rows: Number(process.env['CRASH_ROWS'] ?? 500_000),
  kills: Number(process.env['CRASH_KILLS'] ?? 10),
  chunkSize: Number(process.env['CRASH_CHUNK_SIZE'] ?? 10_000),
  killWindowMs: [0, 3000],
  workloadTps: Number(process.env['CRASH_WORKLOAD_TPS'] ?? 200),
  log: (line) => process.stderr.write(`crash:backfill ${line}\n`),
});
process.stderr.write(
  `crash:backfill ${result.seconds} s; workload changes during the run: ${result.workload_changes}; read events in Kafka: ${result.read_events}; ` +
    `mismatches: ${JSON.stringify(result.mismatches)} (machine shared by PostgreSQL, Kafka, Redis, the BigQuery emulator, stream and the backfill)\n`,
);
const { kills, rows, duplicates, sinks_match_postgres } = result;
process.stdout.write(`${JSON.stringify({ kills, rows, duplicates, sinks_match_postgres })}\n`);
process.exitCode = duplicates === 0 && sinks_match_postgres ? 0 : 1;
