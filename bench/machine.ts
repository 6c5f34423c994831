/**
 * What else ran on the machine while a benchmark measured: the local stack's parts, the
 * load average, and CPU per process. Benchmarks on a shared 2-core machine print these
 * beside their figures, so a reader can judge them.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { cpuTimes, stealPercent, type CpuTimes } from '../src/core/stress/machine.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function stackSummary(): string {
  try {
    const { stdout } = run('bash', [path.join(ROOT, 'scripts/stack'), 'status']);
    return stdout
      .split('\n')
      .map((l) => /^(\S+)\s+(up|down)\s+(?:rss\s+(\S+))?/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && m[2] === 'up')
      .map((m) => (m[3] ? `${m[1]} (rss ${m[3]})` : m[1]))
      .join(', ');
  } catch {
    return 'unknown (scripts/stack status failed)';
  }
}

/**
 * CPU ticks of every process but this one, by pid: own time plus that of its reaped children
 * (so a PostgreSQL backend that exits still counts, in the postmaster). This process's own
 * children (pg_recvlogical, the ProducerPerformance JVM) are reaped by it: see selfTicks.
 */
function cpuSnapshot(): Map<number, { comm: string; ticks: number }> {
  const out = new Map<number, { comm: string; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const ticks = procTicks(entry);
    if (ticks) out.set(Number(entry), ticks);
  }
  return out;
}

function procTicks(pid: string): { comm: string; ticks: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/\/.*/, '');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return { comm, ticks: f[11]! + f[12]! + f[13]! + f[14]! };
  } catch {
    return null; // gone meanwhile
  }
}

/** [own, reaped children] CPU ticks of this process. */
function selfTicks(): [number, number] {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ').map(Number);
  return [f[11]! + f[12]!, f[13]! + f[14]!];
}

export interface CpuMark {
  procs: Map<number, { comm: string; ticks: number }>;
  self: [number, number];
  at: number;
  machine: CpuTimes | null;
}
export const cpuMark = (): CpuMark => ({ procs: cpuSnapshot(), self: selfTicks(), at: performance.now(), machine: cpuTimes() });

/** CPU used since `mark`, in % of one core, per command, busiest first (USER_HZ = 100). */
export function cpuSince(mark: CpuMark, children: string): string {
  const seconds = (performance.now() - mark.at) / 1000;
  const byComm = new Map<string, number>();
  for (const [pid, now] of cpuSnapshot()) {
    const delta = now.ticks - (mark.procs.get(pid)?.ticks ?? 0);
    byComm.set(now.comm, (byComm.get(now.comm) ?? 0) + delta);
  }
  const [own, reaped] = selfTicks();
  byComm.set('bench (this process)', own - mark.self[0]);
  if (reaped - mark.self[1] > 0) byComm.set(children, reaped - mark.self[1]);
  const pct = (ticks: number) => Math.round(ticks / seconds);
  const total = [...byComm.values()].reduce((a, b) => a + b, 0);
  const parts = [...byComm]
    .filter(([, t]) => pct(t) >= 3)
    .sort((a, b) => b[1] - a[1])
    .map(([comm, t]) => `${comm} ${pct(t)}%`);
  // Steal: what the host of a virtual machine gave to others; the "of 200 %" is less than that then.
  const steal = stealPercent(mark.machine, cpuTimes());
  return `${parts.join(', ')}; all processes ${pct(total)}% of ${os.cpus().length * 100}%${steal === null ? '' : `; steal ${steal}%`}`;
}

export const load = () => os.loadavg().map((v) => v.toFixed(2)).join(' ');

/** utime + stime of a process, in seconds: the one stress-test reports with. */
export { cpuSeconds } from '../src/core/stress/machine.js';
