/**
 * Stuck detection inside the running process. A component (capture, each sink) says when
 * it has work (`work()`: something read that is not yet committed, or a failure that will
 * be retried) and when it moved forward (`progress()`: a Kafka commit, a confirmed LSN,
 * committed offsets). It is stuck when the oldest work not followed by progress is older
 * than the threshold: retrying the same position forever, or a sink paused by an open
 * circuit while its lag grows. An idle component has no work and is never stuck.
 */
export interface StuckComponent {
  component: string;
  /** Seconds since the work that has seen no progress arrived. */
  seconds: number;
  /** The last position it moved to (LSN, offsets), if it said. */
  last_position: string | null;
  reason: string;
}

export class ProgressWatch {
  private workSince: number | null = null;
  private position: string | null = null;
  private explain: (() => string) | null = null;

  constructor(
    readonly component: string,
    private readonly now: () => number = Date.now,
  ) {}

  work(): void {
    this.workSince ??= this.now();
  }

  /** Says, when stuck, what the component is doing at that moment (which step it waits in). */
  explainWith(explain: () => string): void {
    this.explain = explain;
  }

  progress(position?: string): void {
    this.workSince = null;
    if (position !== undefined) this.position = position;
  }

  stuck(thresholdMs: number): StuckComponent | null {
    if (this.workSince === null) return null;
    const ms = this.now() - this.workSince;
    if (ms <= thresholdMs) return null;
    const seconds = Math.round(ms / 100) / 10;
    return {
      component: this.component,
      seconds,
      last_position: this.position,
      reason: `${this.component} has had work and made no progress${this.position ? ` past ${this.position}` : ''} for ${seconds} s (health.stuckAfterSeconds ${thresholdMs / 1000}): see its error log lines${this.explain ? `; now: ${this.explain()}` : ''}`,
    };
  }
}

/** Every watch of one process, for /ready and `status`. */
export class ProgressBoard {
  private readonly watches = new Map<string, ProgressWatch>();

  watch(component: string): ProgressWatch {
    let w = this.watches.get(component);
    if (!w) {
      w = new ProgressWatch(component);
      this.watches.set(component, w);
    }
    return w;
  }

  stuck(thresholdMs: number): StuckComponent[] {
    return [...this.watches.values()].map((w) => w.stuck(thresholdMs)).filter((s): s is StuckComponent => s !== null);
  }
}
