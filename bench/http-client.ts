/**
 * The HTTP sink's client cost, one POST per event: CPU seconds per 100k requests of the
 * client process for each way of sending, against one plain receiver in a child process
 * (its CPU reported beside). Every leg sends the same signed ~880 B event bodies with the
 * sink's headers, 16 requests in flight (the sink's default concurrency), on keep-alive
 * connections.
 *
 * Legs:
 *   - `node:http Agent`: http.request with a keep-alive Agent of 16 sockets (the sink's
 *     transport before it moved to undici);
 *   - `sink transport`: src/core/sinks/http/transport.ts (undici Pool, 16 connections, no pipelining);
 *   - `HttpSink.write`: the whole sink per event (body, HMAC, transport, result);
 *   - `undici Pool (pipelining 4)`: 4 connections, 4 requests each (marked idempotent: the
 *     Idempotency-Key makes a replay safe), to see what pipelining would give.
 *
 * Environment: BENCH_REQUESTS (100000), BENCH_IN_FLIGHT (16). Prints one line per leg and
 * a last JSON line.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import { Pool } from 'undici';
import { HttpTransport } from '../src/core/sinks/http/transport.js';
import { HttpSink, USER_AGENT } from '../src/core/sinks/http/sink.js';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign } from '../src/core/sinks/http/signature.js';
import type { ChangeEvent } from '../src/core/event/envelope.js';
import type { SinkRecord } from '../src/core/sinks/contract.js';
import { cpuSeconds, load } from './machine.js';
import { intEnv, round, say } from './lib.js';

const REQUESTS = intEnv('BENCH_REQUESTS', 100_000);
const IN_FLIGHT = intEnv('BENCH_IN_FLIGHT', 16);
const KEY = 'bench-hmac-key';

/** A plain receiver: reads each body, answers 204, in its own process (so its CPU is its own). */
const RECEIVER = `
const http = require('node:http');
const server = http.createServer((req, res) => { req.on('data', () => {}); req.on('end', () => { res.statusCode = 204; res.end(); }); });
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

function event(n: number): ChangeEvent {
  return {
    id: `bench-${n.toString(36).padStart(22, '0')}`, version: 1, op: 'update', schema: 'public', table: 'bench_rows',
    key: { id: String(n) }, before: null, after: { id: String(n), ev: n, payload: 'x'.repeat(520), updated_at: '2026-12-01T19:00:00.000000Z' },
    lsn: '0/16B3748', xid: 1000 + n, commit_ts: '2026-12-01T19:00:00.000000Z', source: { pipeline: 'bench', db: 'streamctl', kind: 'cdc', slot: 'bench' },
  };
}

/** Sends REQUESTS through `send` with IN_FLIGHT at once; CPU s per 100k of this process. */
async function leg(name: string, send: (n: number) => Promise<void>): Promise<{ leg: string; cpu_s_per_100k: number; receiver_cpu_s_per_100k: number; requests_per_s: number }> {
  // Warm-up: connections open, code optimised.
  for (let i = 0; i < 2000; i += IN_FLIGHT) await Promise.all(Array.from({ length: IN_FLIGHT }, (_, j) => send(i + j)));
  const cpu = process.cpuUsage();
  const receiverBefore = cpuSeconds(receiver.pid!);
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < REQUESTS) await send(next++);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const receiverUsed = (cpuSeconds(receiver.pid!) ?? 0) - (receiverBefore ?? 0);
  const per100k = (s: number) => round((s / REQUESTS) * 100_000, 2);
  const figures = { leg: name, cpu_s_per_100k: per100k((used.user + used.system) / 1e6), receiver_cpu_s_per_100k: per100k(receiverUsed), requests_per_s: Math.round(REQUESTS / seconds) };
  say(`${name.padEnd(34)} ${String(figures.cpu_s_per_100k).padStart(6)} CPU s per 100k (receiver ${figures.receiver_cpu_s_per_100k}), ${figures.requests_per_s} requests/s`);
  return figures;
}

const receiver = spawn(process.execPath, ['-e', RECEIVER], { stdio: ['ignore', 'pipe', 'inherit'] });

async function main(): Promise<void> {
  const [line] = (await once(receiver.stdout!, 'data')) as [Buffer];
  const url = new URL(`http://127.0.0.1:${line.toString().trim()}/events`);
  const bodies = Array.from({ length: 1000 }, (_, i) => JSON.stringify(event(i)));
  const headersOf = (n: number, body: string) => ({ 'content-type': 'application/json', 'user-agent': USER_AGENT, [IDEMPOTENCY_HEADER]: `bench-${n}`, [SIGNATURE_HEADER]: sign(KEY, body) });
  say(`HTTP client cost, ${REQUESTS} POSTs of ${bodies[0]!.length} B, ${IN_FLIGHT} in flight, keep-alive; load ${load()}`);
  const results = [];

  const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT, maxFreeSockets: IN_FLIGHT });
  results.push(await leg('node:http Agent (keep-alive)', (n) => new Promise<void>((resolve, reject) => {
    const body = bodies[n % bodies.length]!;
    const req = http.request(url, { method: 'POST', headers: { ...headersOf(n, body), 'content-length': Buffer.byteLength(body) }, agent }, (res) => {
      res.on('data', () => {});
      res.once('end', () => (res.statusCode === 204 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.once('error', reject);
    req.end(body);
  })));
  agent.destroy();

  const transport = new HttpTransport(IN_FLIGHT);
  results.push(await leg('sink transport (undici Pool)', async (n) => {
    const body = bodies[n % bodies.length]!;
    const a = await transport.request('POST', url, headersOf(n, body), body, 10_000, 200);
    if (a.status !== 204) throw new Error(`status ${a.status}`);
  }));
  transport.stop();

  const logger = { child: () => logger, debug() {}, info() {}, warn() {}, error() {} } as never;
  const sink = new HttpSink({ url: url.href, healthUrl: '', timeoutMs: 10_000, batchSize: 1 } as never, KEY, logger, { concurrency: IN_FLIGHT });
  await sink.start();
  const events = Array.from({ length: 1000 }, (_, i) => event(i));
  results.push(await leg('HttpSink.write, 1 event', async (n) => {
    const r = await sink.write([{ event: events[n % events.length]!, topic: 't', partition: 0, offset: String(n) } as SinkRecord]);
    if (!r[0]!.ok) throw new Error('write failed');
  }));
  await sink.stop();

  const pool = new Pool(url.origin, { connections: IN_FLIGHT / 4, pipelining: 4 });
  results.push(await leg('undici Pool (pipelining 4)', async (n) => {
    const body = bodies[n % bodies.length]!;
    const res = await pool.request({ method: 'POST', path: url.pathname, headers: headersOf(n, body), body, idempotent: true });
    await res.body.text();
    if (res.statusCode !== 204) throw new Error(`status ${res.statusCode}`);
  }));
  await pool.close();
  say(JSON.stringify({ requests: REQUESTS, in_flight: IN_FLIGHT, loadavg: load(), legs: results }));
}

main()
  .catch((err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => receiver.kill());
