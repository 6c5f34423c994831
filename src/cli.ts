import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { backfillCommand } from './commands/backfill.js';
import { replayDlqCommand } from './commands/replay-dlq.js';
import { statusCommand } from './commands/status.js';
import { streamCommand } from './commands/stream.js';
import { stressTestCommand } from './commands/stress-test.js';
import { verifyCommand } from './commands/verify.js';
import { EXIT, EXIT_CODES_HELP } from './core/exit-codes.js';
import { LOG_LEVELS } from './core/logger.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const CONFIG_HELP = `Configuration: defaults (the local stack of scripts/stack), then --config FILE (YAML;
also STREAMCTL_CONFIG), then STREAMCTL_* variables (postgres.port -> STREAMCTL_POSTGRES_PORT,
sinks.http.hmacKey -> STREAMCTL_SINKS_HTTP_HMAC_KEY), then flags. See README.md.`;

export function buildProgram(): Command {
  const program = new Command('streamctl')
    .description('Change data capture from PostgreSQL through Kafka (exactly once) to Redis, BigQuery and HTTP')
    .version(pkg.version, '-V, --version')
    .option('-c, --config <file>', 'YAML configuration file')
    .option('--json', 'machine-readable output: one JSON document on stdout, JSON log lines on stderr')
    .addOption(new Option('--log-level <level>', 'log verbosity').choices(LOG_LEVELS))
    .option('--no-color', 'no colours (also when NO_COLOR is set or stdout is not a terminal)')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `\n${CONFIG_HELP}\n\n${EXIT_CODES_HELP}`);

  for (const sub of [streamCommand(), backfillCommand(), replayDlqCommand(), stressTestCommand(), statusCommand(), verifyCommand()]) {
    sub.addHelpText('after', `\n${EXIT_CODES_HELP}`).showHelpAfterError('(run with --help for usage)');
    program.addCommand(sub);
  }
  // Usage errors exit 2 (commander's own default is 1, which we keep for runtime failures).
  program.exitOverride();
  for (const sub of program.commands) sub.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // 'commander.help' is also the help shown on stderr when no command was given (exit code 1 there): a usage error.
      const benign = ['commander.helpDisplayed', 'commander.version'].includes(err.code) || (err.code === 'commander.help' && err.exitCode === 0);
      process.exitCode = benign ? EXIT.OK : EXIT.USAGE;
      return;
    }
    throw err;
  }
}
