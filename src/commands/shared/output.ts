import { Chalk, type ChalkInstance } from 'chalk';
import { LOG_LEVELS, type LogFields, type Logger, type LogLevel } from '../../core/logger.js';
import { Redactor } from '../../core/config/index.js';

/**
 * Everything streamctl writes goes through an Output: results on stdout, logs on stderr,
 * colour only on a TTY and never with NO_COLOR or --no-color, and every line passed
 * through the redactor so no secret is ever printed.
 */
export interface OutputOptions {
  json: boolean;
  color: boolean | undefined;
  logLevel: LogLevel;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
}

export function wantsColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv, flag: boolean | undefined): boolean {
  if (flag === false) return false;
  // https://no-color.org: present and not empty disables colour.
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  if (env['TERM'] === 'dumb') return false;
  return stream.isTTY === true;
}

export class Output {
  readonly json: boolean;
  readonly color: ChalkInstance;
  readonly isTTY: boolean;
  private redactor = new Redactor([]);
  private readonly stdout: NodeJS.WriteStream;
  private readonly stderr: NodeJS.WriteStream;
  private logLevel: LogLevel;
  /** Progress bars: on a TTY (stderr, where they are drawn), never with --json, NO_COLOR or TERM=dumb. */
  readonly progressBars: boolean;

  constructor(options: OutputOptions) {
    this.json = options.json;
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    this.logLevel = options.logLevel;
    const env = options.env ?? process.env;
    this.isTTY = this.stdout.isTTY === true;
    this.color = new Chalk({ level: !this.json && wantsColor(this.stdout, env, options.color) ? 1 : 0 });
    this.progressBars = !this.json && wantsColor(this.stderr, env, options.color);
  }

  useRedactor(redactor: Redactor): void {
    this.redactor = redactor;
  }

  setLogLevel(level: LogLevel): void {
    this.logLevel = level;
  }

  redact(text: string): string {
    return this.redactor.redact(text);
  }

  /** A result for the user: one JSON document with --json, text otherwise. */
  result(text: string, json: unknown): void {
    this.stdout.write(this.redact(this.json ? `${JSON.stringify(json)}\n` : text.endsWith('\n') ? text : `${text}\n`));
  }

  /** Raw text to stdout (progress, watch screens), still redacted. */
  write(text: string): void {
    this.stdout.write(this.redact(text));
  }

  /** The stream progress bars draw on. */
  get progressStream(): NodeJS.WriteStream {
    return this.stderr;
  }

  logger(component = 'streamctl'): Logger {
    const log = (level: LogLevel, message: string, fields: LogFields = {}): void => {
      if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(this.logLevel)) return;
      const at = new Date().toISOString();
      let line: string;
      if (this.json) {
        line = JSON.stringify({ ts: at, level, component, msg: message, ...fields }, (_k, v: unknown) =>
          typeof v === 'bigint' ? v.toString() : v,
        );
      } else {
        const paint = { debug: this.color.gray, info: this.color.cyan, warn: this.color.yellow, error: this.color.red }[level];
        const extra = Object.entries(fields)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`)
          .join(' ');
        line = `${this.color.gray(at)} ${paint(level.toUpperCase().padEnd(5))} ${component}: ${message}${extra ? ` ${extra}` : ''}`;
      }
      this.stderr.write(`${this.redact(line)}\n`);
    };
    return {
      debug: (m, f) => log('debug', m, f),
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
      child: (name) => this.logger(`${component}.${name}`),
    };
  }

  /** An error for the operator: with --json a JSON object on stdout, else text on stderr. */
  error(message: string, exitCode: number, problems: readonly string[] = []): void {
    if (this.json) {
      this.stdout.write(this.redact(`${JSON.stringify({ ok: false, error: { message, exit_code: exitCode, problems } })}\n`));
      return;
    }
    const lines = [`${this.color.red('error:')} ${message}`, ...problems.map((p) => `  - ${p}`)];
    this.stderr.write(`${this.redact(lines.join('\n'))}\n`);
  }
}
