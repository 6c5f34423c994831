import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * The machine a run measured on, so a figure is never read without its context: CPU count
 * and model, load average, and the CPU each process of the pipeline used.
 */
export interface MachineFigures {
  cpus: number;
  cpu_model: string;
  memory_gib: number;
  loadavg_start: number[];
  loadavg_end: number[];
  /** % of one core over the measured window; 100 = one core busy the whole time. */
  processes: Array<{ name: string; pid: number; cpu_percent: number | null }>;
}

/** utime + stime of a process, in seconds (USER_HZ is 100 on Linux); null once it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

export const loadavg = (): number[] => os.loadavg().map((v) => Math.round(v * 100) / 100);

/** Marks the CPU of a set of processes now; `percent()` gives each one's share of a core since. */
export class CpuWindow {
  private readonly start = new Map<number, number | null>();
  private readonly at = Date.now();

  constructor(private readonly processes: () => Array<{ name: string; pid: number }>) {
    for (const p of processes()) this.start.set(p.pid, cpuSeconds(p.pid));
  }

  percent(): Array<{ name: string; pid: number; cpu_percent: number | null }> {
    const seconds = (Date.now() - this.at) / 1000;
    return this.processes().map(({ name, pid }) => {
      // A process started during the window (a restarted deliverer) used all its CPU inside it.
      const before = this.start.has(pid) ? this.start.get(pid)! : 0;
      const now = cpuSeconds(pid);
      return { name, pid, cpu_percent: before === null || now === null || seconds <= 0 ? null : Math.round((100 * (now - before)) / seconds) };
    });
  }
}

export const machineBase = () => ({ cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? 'unknown', memory_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10 });
