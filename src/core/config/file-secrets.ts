import { secretOf } from '../secret-file.js';
import { SINK_PLUGINS, sinkConfigOf } from '../sinks/registry.js';
import type { Config } from './types.js';

/** The secrets delivery reads from files, so the command can redact them from all output. */
export function deliverySecrets(config: Config): string[] {
  const out: string[] = [];
  const readers = [...SINK_PLUGINS.map((p) => () => p.fileSecrets?.(sinkConfigOf(config, p)) ?? []), () => [secretOf(config.enrich.maskKey, config.enrich.maskKeyFile)]];
  for (const read of readers) {
    try {
      out.push(...read().filter(Boolean));
    } catch {
      // reported when the sink starts
    }
  }
  return out;
}
