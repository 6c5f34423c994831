import { spawn, type ChildProcess } from 'node:child_process';
import { programSpawn } from '../program-launch.js';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import type { SinkName } from '../sinks/contract.js';
import { EnvironmentNotReadyError } from '../errors.js';

/**
 * The pipeline under test when `--spawn`: `streamctl stream` processes this command starts
 * and stops, one (`--layout one`) or capture plus one deliverer per sink (`--layout split`,
 * `stream --role deliver --sink NAME`). Each writes its log to a file under `logDir`.
 */
export type Layout = 'one' | 'split';

export interface PipelineProcess {
  name: string;
  role: 'all' | 'capture' | 'deliver';
  sinks: SinkName[];
  child: ChildProcess;
  metricsPort: number;
  logFile: string;
  restarts: number;
}

export interface SpawnOptions {
  bin: string;
  layout: Layout;
  sinks: SinkName[];
  env: Record<string, string>;
  logDir: string;
  tag: string;
  freePort: () => Promise<number>;
  nodeArgs?: string[];
}

export class SpawnedPipeline {
  readonly processes: PipelineProcess[] = [];
  private readonly logs = new Map<string, { text: string; file: WriteStream }>();
  private stopping = false;

  constructor(private readonly options: SpawnOptions) {}

  async start(timeoutMs = 120_000): Promise<void> {
    const o = this.options;
    const plan: Array<Pick<PipelineProcess, 'name' | 'role' | 'sinks'>> =
      o.layout === 'one'
        ? [{ name: 'stream', role: 'all', sinks: o.sinks }]
        : [{ name: 'capture', role: 'capture', sinks: [] }, ...o.sinks.map((s) => ({ name: `deliver-${s}`, role: 'deliver' as const, sinks: [s] }))];
    for (const p of plan) {
      const proc: PipelineProcess = { ...p, child: null as never, metricsPort: await o.freePort(), logFile: path.join(o.logDir, `streamctl-stress-${o.tag}-${p.name}.log`), restarts: 0 };
      this.launch(proc);
      this.processes.push(proc);
    }
    const started = Date.now();
    while (!this.processes.every((p) => this.ready(p))) {
      const dead = this.processes.find((p) => p.child.exitCode !== null);
      if (dead) throw new Error(`${dead.name} exited with ${dead.child.exitCode} before it was ready: ${this.tail(dead)}`);
      if (Date.now() - started > timeoutMs) throw new Error(`streamctl stream did not get ready in ${timeoutMs / 1000} s: ${this.processes.map((p) => this.tail(p)).join('\n')}`);
      await sleep(100);
    }
  }

  private launch(p: PipelineProcess): void {
    const o = this.options;
    // As the program runs when installed: through its launcher, which picks node's flags (program-launch.ts).
    const launch = programSpawn(o.bin, ['stream', '--role', p.role, ...(p.role === 'deliver' ? p.sinks.flatMap((s) => ['--sink', s]) : [])], o.nodeArgs ?? []);
    p.child = spawn(launch.command, launch.args, { env: { ...process.env, ...o.env, ...launch.env, STREAMCTL_METRICS_PORT: String(p.metricsPort) }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = this.logs.get(p.name);
    if (!log) this.logs.set(p.name, (log = { text: '', file: createWriteStream(p.logFile, { flags: 'a' }) }));
    log.text = '';
    const entry = log;
    p.child.stderr?.on('data', (d: Buffer) => {
      entry.file.write(d);
      if (entry.text.length < 200_000) entry.text += d.toString();
    });
  }

  private ready(p: PipelineProcess): boolean {
    const text = this.logs.get(p.name)?.text ?? '';
    return (p.role === 'deliver' || text.includes('capture starting')) && p.sinks.every((s) => text.includes(`sink delivering sink=${s}`));
  }

  tail(p: PipelineProcess): string {
    return `${p.name}: ${(this.logs.get(p.name)?.text ?? '').slice(-1500)}`;
  }

  /** A process that exited on its own (not killed by `kill`): the run cannot go on. */
  crashed(): PipelineProcess | undefined {
    return this.stopping ? undefined : this.processes.find((p) => p.child.exitCode !== null && p.child.signalCode === null);
  }

  /** The deliverers: every `--role deliver` process, or the one process of layout one. */
  deliverers(): PipelineProcess[] {
    return this.processes.filter((p) => p.role !== 'capture');
  }

  /** SIGKILL and start again (the fault of --kill-deliverer-every); resolves once it is delivering again. */
  async killAndRestart(p: PipelineProcess, timeoutMs = 120_000): Promise<void> {
    const gone = exited(p.child);
    p.child.kill('SIGKILL');
    await gone;
    p.restarts++;
    this.launch(p);
    const started = Date.now();
    while (!this.ready(p)) {
      if (p.child.exitCode !== null) throw new Error(`${p.name} exited with ${p.child.exitCode} after a restart: ${this.tail(p)}`);
      if (Date.now() - started > timeoutMs) throw new Error(`${p.name} did not get ready after a restart: ${this.tail(p)}`);
      await sleep(100);
    }
  }

  /** SIGTERM each (graceful: the open Kafka transaction finishes), SIGKILL after 15 s. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const p of this.processes) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
      p.child.kill('SIGTERM');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
      await exited(p.child);
      clearTimeout(timer);
    }
    for (const { file } of this.logs.values()) file.end();
  }
}

/**
 * Against a running pipeline: its publication must capture the load's table, else the
 * load would never reach a sink and every event would count as lost.
 */
export async function checkCaptured(db: pg.Client, publication: string, table: { schema: string; name: string }): Promise<void> {
  const pub = await db.query<{ puballtables: boolean }>('SELECT puballtables FROM pg_publication WHERE pubname = $1', [publication]);
  const qualified = `${table.schema}.${table.name}`;
  if (pub.rows.length === 0) {
    throw new EnvironmentNotReadyError(`no running pipeline to test: publication ${publication} does not exist`, [
      'start the pipeline first (streamctl stream, with the same config), or let stress-test start one: --spawn',
    ]);
  }
  if (pub.rows[0]!.puballtables) return;
  const listed = await db.query('SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3', [publication, table.schema, table.name]);
  if (listed.rows.length === 0) {
    throw new EnvironmentNotReadyError(`the running pipeline does not capture ${qualified}: publication ${publication} does not list it`, [
      `add ${qualified} to postgres.tables (or STREAMCTL_POSTGRES_TABLES) and restart streamctl stream, then run stress-test --table ${qualified}`,
      'or let stress-test start its own pipeline: --spawn',
    ]);
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
