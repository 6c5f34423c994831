import type { Command } from 'commander';
import { loadConfig, Redactor, type Config } from '../../core/config/index.js';
import type { LogLevel } from '../../core/logger.js';
import { Output } from './output.js';

/** The global flags every subcommand takes (declared on the program in src/cli.ts). */
export interface GlobalOptions {
  config?: string;
  json?: boolean;
  logLevel?: LogLevel;
  color?: boolean;
}

export interface CommandContext {
  config: Config;
  out: Output;
}

/** Output first (so a config error can be printed as the user asked), then the config. */
export function outputFor(command: Command): Output {
  const g = command.optsWithGlobals<GlobalOptions>();
  return new Output({ json: g.json === true, color: g.color, logLevel: g.logLevel ?? 'info' });
}

export function contextFor(command: Command, out: Output): CommandContext {
  const g = command.optsWithGlobals<GlobalOptions>();
  // Until the config is read, redact anything that looks like it came from a secret env var.
  out.useRedactor(
    new Redactor(
      ['STREAMCTL_POSTGRES_PASSWORD', 'STREAMCTL_SINKS_REDIS_PASSWORD', 'STREAMCTL_SINKS_HTTP_HMAC_KEY', 'STREAMCTL_SINKS_BIGQUERY_CREDENTIALS_JSON']
        .map((name) => process.env[name])
        .filter((v): v is string => typeof v === 'string'),
    ),
  );
  const config = loadConfig({ file: g.config, flags: g.logLevel ? [{ path: ['log', 'level'], value: g.logLevel }] : [] });
  out.useRedactor(Redactor.forConfig(config));
  out.setLogLevel(config.log.level);
  return { config, out };
}
