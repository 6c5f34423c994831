import type { Config } from '../config/types.js';
import type { Logger } from '../logger.js';
import { enabledSinkNames } from '../sinks/registry.js';
import { outageFailure, outageRecovered } from '../outages.js';
import { probeComponent } from './components.js';
import { endpointOf } from './probes.js';
import type { ComponentName } from './types.js';

/** A part `stream` uses that did not answer its last probe: /ready names it, `status` shows it. */
export interface DownComponent {
  component: ComponentName;
  endpoint: string;
  error: string;
  since: string;
}

/** The parts a `stream` of this role talks to: capture reads PostgreSQL, delivery the enabled sinks; both write or read Kafka. */
export function componentsFor(config: Config, role: 'capture' | 'deliver' | 'all'): ComponentName[] {
  const parts: ComponentName[] = [];
  if (role !== 'deliver') parts.push('postgres');
  parts.push('kafka');
  if (role !== 'capture') parts.push(...enabledSinkNames(config));
  return parts;
}

/**
 * `stream`'s own view of its parts, with the probes `status` uses (health/probes.ts): each
 * part is probed every `health.checkIntervalSeconds`, and one that does not answer is
 * "down" until it answers again, so /ready is 503 naming it during an outage rather than
 * only once something is stuck for minutes. One log line when a part goes down and one
 * when it is back, however many probes fail in between.
 */
export class ComponentWatch {
  private readonly down = new Map<ComponentName, DownComponent>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly components: ComponentName[],
    /** Per probe; a part that has not answered by then is down. */
    private readonly timeoutMs = 5000,
  ) {}

  start(): void {
    void this.checkOnce();
    this.timer = setInterval(() => void this.checkOnce(), this.config.health.checkIntervalSeconds * 1000);
  }

  /** The parts down at the last probe, in the order `status` lists them. */
  downNow(): DownComponent[] {
    return this.components.filter((c) => this.down.has(c)).map((c) => this.down.get(c)!);
  }

  /** One round of probes; a round still running is awaited, not doubled. */
  checkOnce(): Promise<void> {
    this.running ??= this.probeAll().finally(() => (this.running = null));
    return this.running;
  }

  private async probeAll(): Promise<void> {
    await Promise.all(
      this.components.map(async (name) => {
        const endpoint = endpointOf(name, this.config);
        const askedAt = Date.now();
        const { health } = await probeComponent(name, this.config, this.logger, this.timeoutMs);
        const was = this.down.get(name);
        if (health.state === 'down') {
          if (was) return;
          const error = health.error ?? 'did not answer';
          this.down.set(name, { component: name, endpoint, error, since: new Date().toISOString() });
          // PostgreSQL and Kafka outages are told once per process, by whoever saw them first (outages.ts).
          if (name === 'postgres' || name === 'kafka') {
            if (!outageFailure(this.logger, name, new Error(error), 'the health check', { endpoint })) this.logger.debug(`${name} is down: not ready until it answers`, { endpoint, error });
          } else this.logger.error(`${name} is down: not ready until it answers`, { endpoint, error });
        } else if (was) {
          this.down.delete(name);
          if (name === 'postgres' || name === 'kafka') outageRecovered(this.logger, name, 'the health check', askedAt);
          else this.logger.info(`${name} answers again`, { endpoint, down_since: was.since });
        }
      }),
    );
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
