import type { Config } from '../config/types.js';
import { bigQueryPlugin } from './bigquery/index.js';
import { httpPlugin } from './http/index.js';
import type { AnySinkPlugin, SinkPlugin } from './plugin.js';
import { redisPlugin } from './redis/index.js';

/**
 * Every sink streamctl can deliver to, in the order `status` and the deliverer list them.
 * A new sink is a folder beside these (config, health check, sink, index) and one entry here.
 */
export const SINK_PLUGINS = [redisPlugin, bigQueryPlugin, httpPlugin] as const;

type Registered = (typeof SINK_PLUGINS)[number];
export type SinkName = Registered['name'];
/** `config.sinks`: one part per registered sink, typed by what its folder declares. */
export type SinksConfig = { [P in Registered as P['name']]: P extends SinkPlugin<string, infer C> ? C : never };

export const SINK_NAMES: readonly SinkName[] = SINK_PLUGINS.map((p) => p.name);

export function sinkPlugin(name: SinkName): Registered;
export function sinkPlugin(name: string, plugins: readonly AnySinkPlugin[]): AnySinkPlugin;
export function sinkPlugin(name: string, plugins: readonly AnySinkPlugin[] = SINK_PLUGINS): AnySinkPlugin {
  const plugin = plugins.find((p) => p.name === name);
  if (!plugin) throw new Error(`no such sink: ${name} (known: ${plugins.map((p) => p.name).join(', ')})`);
  return plugin;
}

/** The part of the config for `plugin`'s sink. */
export const sinkConfigOf = (config: Config, plugin: AnySinkPlugin): ReturnType<AnySinkPlugin['defaults']> =>
  (config.sinks as unknown as Record<string, ReturnType<AnySinkPlugin['defaults']>>)[plugin.name];

/** The sinks the config turns on, in registry order. */
export function enabledSinks(config: Config, plugins: readonly AnySinkPlugin[] = SINK_PLUGINS): AnySinkPlugin[] {
  return plugins.filter((p) => sinkConfigOf(config, p)?.enabled === true);
}

export const enabledSinkNames = (config: Config): SinkName[] => enabledSinks(config).map((p) => p.name as SinkName);
