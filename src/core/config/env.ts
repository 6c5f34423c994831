import type { Schema } from '../schema-kit.js';
import { CONFIG_SCHEMA, schemaLeaves } from './schema.js';

/**
 * Environment overrides: every config leaf `a.bC.d` can be set as `STREAMCTL_A_B_C_D`
 * (camelCase split into words). The names are derived from the schema, so a new setting
 * gets its variable for free and an unknown `STREAMCTL_` variable is reported as a
 * mistake instead of being ignored.
 */

/**
 * Variables that are not config leaves but that streamctl reads itself: the config file's
 * path, and what bin/streamctl's launcher reads before node starts (which node, its young
 * generation, more node flags), still in the environment node gets.
 */
export const RESERVED_ENV = new Set(['STREAMCTL_CONFIG', 'STREAMCTL_NODE', 'STREAMCTL_SEMI_SPACE_MB', 'STREAMCTL_NODE_ARGS']);

export const envNameFor = (path: readonly string[]): string =>
  'STREAMCTL_' + path.map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');

export interface EnvOverride {
  path: string[];
  variable: string;
  value: unknown;
}

export interface EnvOverrides {
  overrides: EnvOverride[];
  problems: string[];
}

function coerce(raw: string, type: string): unknown {
  switch (type) {
    case 'integer':
      return /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
    case 'integer-or-string':
      return /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(raw)) return true;
      if (/^(false|0|no|off)$/i.test(raw)) return false;
      return raw;
    case 'array':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    default:
      return raw;
  }
}

export function readEnvOverrides(env: NodeJS.ProcessEnv, schema: Schema = CONFIG_SCHEMA): EnvOverrides {
  const byName = new Map(schemaLeaves(schema).map((leaf) => [envNameFor(leaf.path), leaf]));
  const overrides: EnvOverride[] = [];
  const problems: string[] = [];
  for (const [variable, raw] of Object.entries(env)) {
    if (!variable.startsWith('STREAMCTL_') || RESERVED_ENV.has(variable) || raw === undefined) continue;
    const leaf = byName.get(variable);
    if (!leaf) {
      problems.push(`${variable}: unknown environment variable (not a streamctl setting)`);
      continue;
    }
    overrides.push({ path: leaf.path, variable, value: coerce(raw, leaf.type) });
  }
  return { overrides, problems };
}
