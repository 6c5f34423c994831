import { FAULTS, runFaultsCrash } from './faults-crash.js';

/**
 * `npm run crash:faults`: the full proof. At least 20,000 changes while Redis is flushed,
 * Kafka restarted (down 30 s), PostgreSQL restarted (fast, then immediate) and the deliverer
 * SIGKILLed during a Redis rebuild. Last line: one JSON object; exit 1 unless all is clean.
 */
const result = await runFaultsCrash({
  faults: [...FAULTS],
  changes: Number(process.env['CRASH_CHANGES'] ?? 20_000),
  kafkaDownMs: Number(process.env['CRASH_KAFKA_DOWN_MS'] ?? 30_000),
  ratePerSecond: Number(process.env['CRASH_RATE'] ?? 200),
  log: (line) => process.stderr.write(`crash:faults ${line}\n`),
});
process.stderr.write(
  `crash:faults ${result.seconds} s; ${result.kills_during_rebuild} deliverer SIGKILLed mid-rebuild; writes ${JSON.stringify(result.writes)}; ` +
    `problems: ${JSON.stringify(result.problems)} (machine shared by the stack, the private servers, the capturer, the deliverer and other engineers' runs)\n`,
);
const { faults, events, sinks, redis_matches_postgres, bigquery_latest_matches_postgres } = result;
process.stdout.write(`${JSON.stringify({ faults, events, sinks, redis_matches_postgres, bigquery_latest_matches_postgres })}\n`);
const clean = Object.values(sinks).every((s) => s.lost === 0 && s.duplicates === 0) && redis_matches_postgres && bigquery_latest_matches_postgres && result.kills_during_rebuild > 0;
process.exitCode = clean ? 0 : 1;
