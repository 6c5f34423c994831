import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ErrorObject } from 'ajv';
import { ConfigError } from '../errors.js';
import { defaultConfig } from './defaults.js';
import { readEnvOverrides } from './env.js';
import { CONFIG_SCHEMA, configSchema } from './schema.js';
import type { Schema } from '../schema-kit.js';
import type { Config } from './types.js';
import { configValidator } from './validator.js';
import type { AnySinkPlugin } from '../sinks/plugin.js';
import { SINK_PLUGINS, sinkConfigOf } from '../sinks/registry.js';

export interface LoadConfigOptions {
  /** YAML file; none means defaults (the local stack) plus the environment. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Last word, from command-line flags: `{ path: ['log','level'], value: 'debug' }`. */
  flags?: Array<{ path: string[]; value: unknown }>;
  /** The sinks whose settings `sinks.*` holds (src/core/sinks/registry.ts); another list only in tests. */
  sinks?: readonly AnySinkPlugin[];
}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge of `over` onto `base`; arrays and scalars replace. */
function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = isTree(value) && isTree(out[key]) ? merge(out[key] as Tree, value) : value;
  }
  return out;
}

function setPath(tree: Tree, pathParts: readonly string[], value: unknown): void {
  let node = tree;
  for (const key of pathParts.slice(0, -1)) {
    if (!isTree(node[key])) node[key] = {};
    node = node[key] as Tree;
  }
  node[pathParts[pathParts.length - 1]!] = value;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function schemaAt(schema: Schema, pathParts: readonly string[]): Tree | undefined {
  let node: Tree | undefined = schema;
  for (const key of pathParts) node = (node?.['properties'] as Record<string, Tree> | undefined)?.[key];
  return node;
}

const dotted = (instancePath: string): string =>
  instancePath
    .split('/')
    .filter(Boolean)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : p))
    .join('.')
    .replace(/\.\[/g, '[');

function describe(error: ErrorObject, origin: Map<string, string>, schema: Schema): string {
  const at = dotted(error.instancePath);
  const from = origin.get(at);
  const where = (p: string) => (from ? `${p} (from ${from})` : p);
  if (error.keyword === 'additionalProperties') {
    const name = String((error.params as { additionalProperty: string }).additionalProperty);
    const full = at ? `${at}.${name}` : name;
    const parentParts = error.instancePath.split('/').filter(Boolean);
    const known = Object.keys((schemaAt(schema, parentParts)?.['properties'] as Tree | undefined) ?? {});
    const close = known.filter((k) => editDistance(k, name) <= 2);
    const hint = close.length > 0 ? ` (did you mean ${close.join(' or ')}?)` : known.length > 0 ? ` (known: ${known.join(', ')})` : '';
    return `${full}: unknown setting${hint}`;
  }
  if (error.keyword === 'required') {
    const name = String((error.params as { missingProperty: string }).missingProperty);
    return `${at ? `${at}.` : ''}${name}: is required`;
  }
  if (error.keyword === 'type' && error.instancePath === '') return '(top level): must be a mapping of settings';
  return `${where(at || '(top level)')}: ${error.message ?? 'is invalid'}`;
}

/** Rules across fields that a JSON Schema says badly. */
function crossFieldProblems(config: Config, plugins: readonly AnySinkPlugin[]): string[] {
  const problems: string[] = [];
  const retries: Array<[string, { initialDelayMs: unknown; maxDelayMs: unknown }]> = [
    ['kafka.retry', config.kafka.retry],
    ...plugins.map((p): [string, { initialDelayMs: unknown; maxDelayMs: unknown }] => [`sinks.${p.name}.retry`, sinkConfigOf(config, p).retry]),
  ];
  for (const [at, policy] of retries) {
    if (typeof policy.initialDelayMs === 'number' && typeof policy.maxDelayMs === 'number' && policy.initialDelayMs > policy.maxDelayMs) {
      problems.push(`${at}.initialDelayMs: must not be larger than ${at}.maxDelayMs (${policy.maxDelayMs})`);
    }
  }
  for (const plugin of plugins) problems.push(...(plugin.problems?.(sinkConfigOf(config, plugin)) ?? []));
  const masking = Object.entries(config.enrich.tables).filter(([, t]) => (t.mask ?? []).length > 0);
  if (masking.length > 0 && !config.enrich.maskKey && !config.enrich.maskKeyFile) {
    problems.push(`enrich.maskKey: ${masking.map(([t]) => t).join(', ')} mask columns: set maskKey or maskKeyFile (the key of the masking hash)`);
  }
  if (config.enrich.maskKey && config.enrich.maskKeyFile) problems.push('enrich.maskKeyFile: set either maskKey or maskKeyFile, not both');
  if (config.kafka.replicationFactor > config.kafka.brokers.length && config.kafka.brokers.length > 0) {
    problems.push(
      `kafka.replicationFactor: ${config.kafka.replicationFactor} is more than the ${config.kafka.brokers.length} broker(s) listed in kafka.brokers`,
    );
  }
  return problems;
}

/** Relative file paths in a config file are relative to that file, not to the cwd. */
function resolveFilePaths(tree: Tree, baseDir: string, plugins: readonly AnySinkPlugin[]): void {
  const sinks = isTree(tree['sinks']) ? tree['sinks'] : undefined;
  const enrich = isTree(tree['enrich']) ? tree['enrich'] : undefined;
  const validation = isTree(tree['validation']) && isTree(tree['validation']['tables']) ? tree['validation']['tables'] : undefined;
  const sinkFiles = plugins.flatMap((p) => {
    const node = sinks && isTree(sinks[p.name]) ? (sinks[p.name] as Tree) : undefined;
    return (p.fileSettings ?? []).map((key) => [node, key] as const);
  });
  for (const [node, key] of [
    ...sinkFiles,
    [enrich, 'maskKeyFile'] as const,
    ...Object.keys(validation ?? {}).map((table) => [validation, table] as const),
  ]) {
    const value = node?.[key];
    if (node && typeof value === 'string' && value !== '' && !path.isAbsolute(value)) node[key] = path.resolve(baseDir, value);
  }
}

/**
 * The YAML parser, loaded when a file is read: configured by the environment alone (the
 * benchmarks, containers) or asked for `--help`, a process did not need its 40 ms of start.
 * CommonJS, so it loads synchronously, as loadConfig is.
 */
const yaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml') as typeof import('yaml');

function readConfigFile(file: string, problems: string[], plugins: readonly AnySinkPlugin[]): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`--config ${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    return {};
  }
  const { parse: parseYaml, YAMLParseError } = yaml();
  try {
    const parsed: unknown = parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (!isTree(parsed)) {
      problems.push(`--config ${file}: the file must be a YAML mapping of settings`);
      return {};
    }
    resolveFilePaths(parsed, path.dirname(path.resolve(file)), plugins);
    return parsed;
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
    problems.push(`--config ${file}: not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`);
    return {};
  }
}

/**
 * Defaults, then the YAML file, then `STREAMCTL_*` variables, then flags. Throws one
 * ConfigError that lists every problem found, each with the setting's path.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const plugins = options.sinks ?? SINK_PLUGINS;
  const schema = options.sinks ? configSchema(plugins) : CONFIG_SCHEMA;
  const { validate } = configValidator<Config>(schema);
  const problems: string[] = [];
  const file = options.file ?? env['STREAMCTL_CONFIG'];
  let tree = defaultConfig(plugins) as unknown as Tree;
  if (file) tree = merge(tree, readConfigFile(file, problems, plugins));

  const origin = new Map<string, string>();
  const { overrides, problems: envProblems } = readEnvOverrides(env, schema);
  problems.push(...envProblems);
  for (const { path: p, variable, value } of overrides) {
    setPath(tree, p, value);
    origin.set(p.join('.'), variable);
  }
  for (const flag of options.flags ?? []) {
    setPath(tree, flag.path, flag.value);
    origin.set(flag.path.join('.'), 'command line');
  }

  if (!validate(tree)) {
    problems.push(...(validate.errors ?? []).map((e) => describe(e, origin, schema)));
  } else {
    problems.push(...crossFieldProblems(tree as unknown as Config, plugins));
  }
  if (problems.length > 0) throw new ConfigError([...new Set(problems)]);
  return tree as unknown as Config;
}
