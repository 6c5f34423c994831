import type { Config } from '../config/types.js';
import type { Logger } from '../logger.js';
import type { AnySinkPlugin } from '../sinks/plugin.js';
import { enabledSinks, SINK_PLUGINS, type SinkName } from '../sinks/registry.js';
import { BigQuerySide } from './bigquery-side.js';
import { RedisSide } from './redis-side.js';
import type { SinkSide } from './sink-side.js';

/**
 * How verify reads one registered sink's effective view of a table. Only a sink that keeps
 * a read model streamctl can query is compared with PostgreSQL (HTTP's store is a third
 * party's: it has no side). Which sinks exist, their names and their order come from the
 * sink registry (../sinks/registry.ts); a side here adds one of them to `verify`,
 * `verify --sink` and stress-test's final-state check. The sides live here, not in the sink
 * folders, so that sinks/ never imports verify/ (which imports delivery/, which imports sinks/).
 */
export interface VerifySide<N extends string = string> {
  readonly sink: N;
  open(config: Config, logger: Logger): Promise<SinkSide<N>>;
}

export const VERIFY_SIDES = [
  { sink: 'redis', open: (config, logger) => RedisSide.connect(config.sinks.redis, logger) },
  { sink: 'bigquery', open: async (config) => new BigQuerySide(config.sinks.bigquery) },
] as const satisfies readonly VerifySide<SinkName>[];

/** A registered sink verify can compare. */
export type VerifySinkName = (typeof VERIFY_SIDES)[number]['sink'];

/** The registered sinks verify can compare, in registry order. */
export function verifiableSinks(): VerifySinkName[];
export function verifiableSinks(plugins: readonly AnySinkPlugin[], sides: readonly VerifySide[]): string[];
export function verifiableSinks(plugins: readonly AnySinkPlugin[] = SINK_PLUGINS, sides: readonly VerifySide[] = VERIFY_SIDES): string[] {
  return plugins.filter((p) => sides.some((s) => s.sink === p.name)).map((p) => p.name);
}

/** Those of them the config turns on (`verify --sink all`). */
export function enabledVerifiableSinks(config: Config): VerifySinkName[];
export function enabledVerifiableSinks(config: Config, plugins: readonly AnySinkPlugin[], sides: readonly VerifySide[]): string[];
export function enabledVerifiableSinks(config: Config, plugins: readonly AnySinkPlugin[] = SINK_PLUGINS, sides: readonly VerifySide[] = VERIFY_SIDES): string[] {
  return verifiableSinks(enabledSinks(config, plugins), sides);
}

/** Opens verify's side of `sink`. */
export function openSide(sink: VerifySinkName, config: Config, logger: Logger): Promise<SinkSide<VerifySinkName>>;
export function openSide(sink: string, config: Config, logger: Logger, sides: readonly VerifySide[]): Promise<SinkSide<string>>;
export function openSide(sink: string, config: Config, logger: Logger, sides: readonly VerifySide[] = VERIFY_SIDES): Promise<SinkSide<string>> {
  const side = sides.find((s) => s.sink === sink);
  if (!side) throw new Error(`verify cannot compare the ${sink} sink (it can compare ${sides.map((s) => s.sink).join(', ')})`);
  return side.open(config, logger);
}
