/** Small helpers every benchmark uses: environment numbers, child processes, memory, output. What else ran on the machine is in machine.ts. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cpuMark, cpuSince, ROOT, run } from './machine.js';

export const KAFKA_CP = `${path.join(ROOT, '.stack/kafka/libs')}/*`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const round = (v: number, digits = 0) => Math.round(v * 10 ** digits) / 10 ** digits;
export const say = (line: string) => process.stdout.write(`${line}\n`);

export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (!raw) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer, got '${raw}'`);
  return v;
}

/** Resident memory of a process now, in kB; null once it is gone. */
export function rssKb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

export function runAsync(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Kafka's own ProducerPerformance on a fresh 3-partition topic: `records` records of
 * `recordSize` bytes, acks=all, in transactions of `transactionMs`. The limit a benchmark
 * compares itself with. Prints what it measured and the CPU meanwhile; returns records/s.
 */
export async function producerPerformance(options: { broker: string; topic: string; records: number; recordSize: number; transactionMs: number; transactionalId: string }): Promise<number> {
  const created = run('java', ['-Xmx256m', '-cp', KAFKA_CP, 'org.apache.kafka.tools.TopicCommand', '--bootstrap-server', options.broker,
    '--create', '--topic', options.topic, '--partitions', '3', '--replication-factor', '1']);
  if (created.code !== 0) throw new Error(`TopicCommand failed: ${created.stderr.trim()}`);
  const mark = cpuMark();
  const perf = await runAsync('java', ['-Xmx512m', '-cp', KAFKA_CP, 'org.apache.kafka.tools.ProducerPerformance',
    '--bootstrap-server', options.broker, '--topic', options.topic, '--num-records', String(options.records), '--record-size', String(options.recordSize),
    '--throughput', '-1', '--transaction-duration-ms', String(options.transactionMs),
    '--command-property', 'acks=all', `transactional.id=${options.transactionalId}`]);
  const summary = perf.stdout.trim().split('\n').reverse().find((l) => /records sent, [\d.]+ records\/sec/.test(l));
  if (perf.code !== 0 || !summary) throw new Error(`ProducerPerformance failed (${perf.code}): ${(perf.stderr || perf.stdout).slice(-2000)}`);
  const perSecond = Number(/records sent, ([\d.]+) records\/sec/.exec(summary)![1]);
  say(`limit    kafka ProducerPerformance: ${Math.round(perSecond)} records/s (${options.recordSize} B records, acks=all, transactions of ${options.transactionMs} ms)`);
  say(`         ${summary}`);
  say(`         CPU meanwhile, JVM start-up included (% of one core): ${cpuSince(mark, 'ProducerPerformance JVM')}`);
  return perSecond;
}
