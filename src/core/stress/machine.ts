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
  /**
   * Steal over the measured window: % of this virtual machine's CPU time its host gave to
   * others (/proc/stat), null where it cannot be read. A run at 30 % steal had a third less
   * machine than its core count says (seen on 2026-12-03: README, "Performance").
   */
  steal_percent: number | null;
}

/** The machine-wide CPU counters of /proc/stat's first line, in ticks; null when absent. */
export interface CpuTimes {
  total: number;
  steal: number;
}

/** Parses /proc/stat's `cpu` line (user nice system idle iowait irq softirq steal ...). */
export function parseCpuTimes(procStat: string): CpuTimes | null {
  const line = procStat.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) return null;
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (ticks.length < 8 || ticks.some((t) => !Number.isFinite(t))) return null;
  return { total: ticks.reduce((a, b) => a + b, 0), steal: ticks[7]! };
}

export function cpuTimes(): CpuTimes | null {
  try {
    return parseCpuTimes(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return null;
  }
}

/** % of the CPU time between two readings that was stolen (one decimal); null without both or without time. */
export function stealPercent(start: CpuTimes | null, end: CpuTimes | null): number | null {
  if (!start || !end || end.total <= start.total) return null;
  return Math.round((1000 * (end.steal - start.steal)) / (end.total - start.total)) / 10;
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
  private readonly machineAt = cpuTimes();

  constructor(private readonly processes: () => Array<{ name: string; pid: number }>) {
    for (const p of processes()) this.start.set(p.pid, cpuSeconds(p.pid));
  }

  /** The machine's steal since the window opened (MachineFigures.steal_percent). */
  steal(): number | null {
    return stealPercent(this.machineAt, cpuTimes());
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
