import { EXIT, type ExitCode } from './exit-codes.js';

/**
 * An error the operator can act on. The core throws these; src/commands turns them into
 * a message and an exit code. `problems` carries every problem found, so a bad config is
 * reported whole rather than one mistake per run.
 */
export class StreamctlError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly problems: readonly string[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ConfigError extends StreamctlError {
  constructor(problems: readonly string[]) {
    super(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'})`, EXIT.USAGE, problems);
  }
}

/** The environment is not set up for streamctl: the message says how to fix it. */
export class EnvironmentNotReadyError extends StreamctlError {
  constructor(message: string, problems: readonly string[] = []) {
    super(message, EXIT.ENV_NOT_READY, problems);
  }
}

export class NotBuiltYetError extends StreamctlError {
  constructor(command: string) {
    super(`'${command}' is not built yet in this version of streamctl; nothing was done`, EXIT.RUNTIME);
  }
}
