import type { Config } from './types.js';
import { SINK_PLUGINS } from '../sinks/registry.js';

/** Config paths that hold secrets: never printed, in logs, errors or `--json`. Each sink names its own. */
export const SECRET_PATHS: ReadonlyArray<readonly string[]> = [
  ['postgres', 'password'],
  ...SINK_PLUGINS.flatMap((p) => (p.secretSettings ?? []).map((key) => ['sinks', p.name, key])),
  ['enrich', 'maskKey'],
];

export const REDACTED = '[redacted]';

function getPath(obj: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), obj);
}

/** A copy of the config that is safe to print: set secrets become `[redacted]`. */
export function redactConfig(config: Config): Config {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  for (const path of SECRET_PATHS) {
    const parent = getPath(copy, path.slice(0, -1)) as Record<string, unknown> | undefined;
    const key = path[path.length - 1]!;
    if (parent && typeof parent[key] === 'string' && parent[key] !== '') parent[key] = REDACTED;
  }
  return copy as unknown as Config;
}

/**
 * Replaces every known secret value inside free text. Drivers echo connection strings
 * and request bodies into their error messages; this is the last line of defence, used by
 * every writer in src/commands, so a secret cannot leak through an error we did not write.
 */
export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: Iterable<string>) {
    // Longest first, so a secret that contains another is replaced whole. Very short
    // values are skipped: redacting "a" would mangle every line and protect nothing.
    this.secrets = [...new Set(secrets)].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
  }

  static forConfig(config: Config, extra: Iterable<string> = []): Redactor {
    const values = SECRET_PATHS.map((p) => getPath(config, p)).filter((v): v is string => typeof v === 'string');
    return new Redactor([...values, ...extra]);
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join(REDACTED);
    return out;
  }
}
