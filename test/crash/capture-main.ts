import { runCaptureCrash } from './capture-crash.js';

/**
 * `npm run crash:capture`: the full proof. At least 100,000 changes (one transaction of
 * 50,000 rows) and 20 SIGKILLs. Last line: one JSON object. Exit 1 on any loss, duplicate
 * or reordering.
 */
const kills = Number(process.env['CRASH_KILLS'] ?? 20);
const result = await runCaptureCrash({
  kills,
  smallEvents: Number(process.env['CRASH_SMALL_EVENTS'] ?? 60_000),
  bigTransactionRows: Number(process.env['CRASH_BIG_TX_ROWS'] ?? 50_000),
  killWindowMs: [300, 3000],
  maxBatchEvents: 2000,
  log: (line) => process.stderr.write(`crash:capture ${line}\n`),
});
process.stderr.write(
  `crash:capture ${result.workload_rows} row changes, ${result.kafka_records} records read back, ${result.seconds} s ` +
    `(machine shared by PostgreSQL, Kafka, Redis, the BigQuery emulator and the capturer)\n`,
);
const { kills: k, events, lost, duplicates, out_of_order } = result;
process.stdout.write(`${JSON.stringify({ kills: k, events, lost, duplicates, out_of_order })}\n`);
process.exitCode = lost === 0 && duplicates === 0 && out_of_order === 0 ? 0 : 1;
