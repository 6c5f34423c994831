import type { Config } from '../config/types.js';
import type { Logger } from '../logger.js';
import type { AnySinkPlugin } from '../sinks/plugin.js';
import { SINK_PLUGINS, sinkPlugin } from '../sinks/registry.js';
import { withTimeout } from '../timeout.js';
import { probePostgres } from './postgres.js';
import { endpointOf, probeKafka, probeSink } from './probes.js';
import { componentNames, type ComponentName, type ProbeResult } from './types.js';

/**
 * One component's health: PostgreSQL, Kafka, or a sink through its own health check
 * (src/core/sinks/<name>/health.ts). Never throws: a failure, or no answer within
 * `timeoutMs`, is a `down` component.
 */
export async function probeComponent(
  name: ComponentName,
  config: Config,
  logger: Logger,
  timeoutMs: number,
  plugins: readonly AnySinkPlugin[] = SINK_PLUGINS,
): Promise<ProbeResult> {
  const probe = (): Promise<ProbeResult> => {
    if (name === 'postgres') return probePostgres(config);
    if (name === 'kafka') return probeKafka(config, logger);
    return probeSink(sinkPlugin(name, plugins), config, logger, timeoutMs);
  };
  try {
    return await withTimeout(probe(), timeoutMs, `${name} check`);
  } catch (err) {
    return { health: { state: 'down', endpoint: endpointOf(name, config, plugins), rtt_ms: null, detail: {}, error: (err as Error).message }, problems: [] };
  }
}

/** Every component, probed at once, in `componentNames` order. */
export async function probeComponents(
  config: Config,
  logger: Logger,
  timeoutMs: number,
  plugins: readonly AnySinkPlugin[] = SINK_PLUGINS,
): Promise<Array<[ComponentName, ProbeResult]>> {
  return Promise.all(
    componentNames(plugins).map(async (name): Promise<[ComponentName, ProbeResult]> => [
      name as ComponentName,
      await probeComponent(name as ComponentName, config, logger, timeoutMs, plugins),
    ]),
  );
}
