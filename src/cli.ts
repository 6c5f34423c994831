import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { EXIT, EXIT_CODES_HELP } from './core/exit-codes.js';
import { LOG_LEVELS } from './core/logger.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const CONFIG_HELP = `Configuration: defaults (the local stack of scripts/stack), then --config FILE (YAML;
also STREAMCTL_CONFIG), then STREAMCTL_* variables (postgres.port -> STREAMCTL_POSTGRES_PORT,
sinks.http.hmacKey -> STREAMCTL_SINKS_HTTP_HMAC_KEY), then flags. See README.md.`;

/**
 * Each subcommand's module, loaded only when it runs: a command imports the whole of the
 * engine it drives, and `stream --role capture` (timed from process start by bench:capture)
 * had paid for loading replay, verify and stress-test too. In the order `--help` lists them.
 */
const SUBCOMMANDS: Record<string, () => Promise<Command>> = {
  stream: async () => (await import('./commands/stream.js')).streamCommand(),
  backfill: async () => (await import('./commands/backfill.js')).backfillCommand(),
  'replay-dlq': async () => (await import('./commands/replay-dlq.js')).replayDlqCommand(),
  'stress-test': async () => (await import('./commands/stress-test.js')).stressTestCommand(),
  status: async () => (await import('./commands/status.js')).statusCommand(),
  verify: async () => (await import('./commands/verify.js')).verifyCommand(),
};

/** Global options that take a value, so that value is not taken for the subcommand's name. */
const VALUED_GLOBALS = new Set(['-c', '--config', '--log-level']);

/** The subcommand argv names, or null (none, `help`, a typo: every command is loaded, for commander's help and suggestions). */
export function subcommandOf(args: readonly string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (VALUED_GLOBALS.has(a)) i++;
    else if (!a.startsWith('-')) return Object.hasOwn(SUBCOMMANDS, a) ? a : null;
  }
  return null;
}

export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const named = subcommandOf(argv.slice(2));
  const subcommands = await Promise.all((named ? [named] : Object.keys(SUBCOMMANDS)).map((name) => SUBCOMMANDS[name]!()));
  const program = new Command('streamctl')
    .description('Change data capture from PostgreSQL through Kafka (exactly once) to Redis, BigQuery and HTTP')
    .version(pkg.version, '-V, --version')
    .option('-c, --config <file>', 'YAML configuration file')
    .option('--json', 'machine-readable output: one JSON document on stdout, JSON log lines on stderr')
    .addOption(new Option('--log-level <level>', 'log verbosity').choices(LOG_LEVELS))
    .option('--no-color', 'no colours (also when NO_COLOR is set or stdout is not a terminal)')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `\n${CONFIG_HELP}\n\n${EXIT_CODES_HELP}`);

  for (const sub of subcommands) {
    sub.addHelpText('after', `\n${EXIT_CODES_HELP}`).showHelpAfterError('(run with --help for usage)');
    program.addCommand(sub);
  }
  // Usage errors exit 2 (commander's own default is 1, which we keep for runtime failures).
  program.exitOverride();
  for (const sub of program.commands) sub.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `streamctl status --json | head -1`: a reader that stops early is not an error to print a stack for.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.OK);
    else throw err;
  });
  const program = await buildProgram(argv);
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
