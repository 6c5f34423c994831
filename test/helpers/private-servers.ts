import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LOCAL_STACK } from '../../src/core/local-stack.js';
import { freePort } from './ports.js';

/**
 * Private servers for fault tests: a PostgreSQL, a Kafka and a Redis of the test's own,
 * started from the binaries `scripts/stack` installed, on OS-assigned loopback ports and
 * in a folder under `.scratch/private-servers/`, so a test may stop, restart, flush or fill
 * them. The shared stack's servers are never touched.
 *
 * Clean-up is layered, because a failing or killed test must not leave a JVM behind:
 * `destroy()` in the test's `after`, a synchronous kill-and-remove on process exit, and a
 * sweep at the next start of any private server of folders whose owning process is gone.
 */

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const STACK = path.join(ROOT, '.stack');
const SCRATCH = path.join(ROOT, '.scratch', 'private-servers');
const PG_BIN = '/usr/lib/postgresql/15/bin';
const KAFKA_LIBS = path.join(STACK, 'kafka', 'libs');
const KAFKA_TEMPLATE = path.join(ROOT, 'scripts', 'kafka', 'server.properties.in');
const KAFKA_LOG4J = path.join(ROOT, 'scripts', 'kafka', 'log4j2.xml');
const OWNER_FILE = 'owner.pid';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Everything started by this process: killed and removed synchronously if the process exits first. */
const live = new Set<{ killNow(): void; dir: string }>();
let exitHookInstalled = false;
function track(server: { killNow(): void; dir: string }): void {
  live.add(server);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const s of live) {
      s.killNow();
      rmSync(s.dir, { recursive: true, force: true });
    }
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Server pids recorded in a private folder (`*.pid` files the helper writes, PostgreSQL's postmaster.pid). */
function recordedPids(dir: string): number[] {
  const pids: number[] = [];
  const read = (file: string) => {
    const n = Number(readFileSync(file, 'utf8').split('\n')[0]);
    if (Number.isInteger(n) && n > 0) pids.push(n);
  };
  for (const f of ['server.pid', path.join('data', 'postmaster.pid')]) if (existsSync(path.join(dir, f))) read(path.join(dir, f));
  return pids;
}

/** Folders left by a test process that died without cleaning up (SIGKILL, a crash): kill their servers, remove them. */
function sweepOrphans(): void {
  if (!existsSync(SCRATCH)) return;
  for (const name of readdirSync(SCRATCH)) {
    const dir = path.join(SCRATCH, name);
    const ownerFile = path.join(dir, OWNER_FILE);
    const owner = existsSync(ownerFile) ? Number(readFileSync(ownerFile, 'utf8')) : 0;
    if (owner && alive(owner)) continue;
    for (const pid of recordedPids(dir)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    spawnSync('umount', ['-l', path.join(dir, 'data')], { stdio: 'ignore' }); // a full-disk test's tmpfs, if any
    rmSync(dir, { recursive: true, force: true });
  }
}

function makeDir(kind: string): string {
  sweepOrphans();
  const dir = path.join(SCRATCH, `${kind}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, OWNER_FILE), String(process.pid));
  return dir;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs: number, logFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) {
      const tail = logFile && existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${tail ? `\n--- ${logFile}\n${tail}` : ''}`);
    }
    await sleep(200);
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Runs PostgreSQL's tools as an unprivileged user when the tests run as root (postgres refuses root). */
const PG_OS_USER = process.getuid?.() === 0 ? 'postgres' : undefined;
const asPg = (cmd: string, args: string[]): [string, string[]] => (PG_OS_USER ? ['runuser', ['-u', PG_OS_USER, '--', cmd, ...args]] : [cmd, args]);
function chownToPg(p: string): void {
  if (!PG_OS_USER) return;
  const { stdout } = spawnSync('id', ['-u', PG_OS_USER], { encoding: 'utf8' });
  const { stdout: gid } = spawnSync('id', ['-g', PG_OS_USER], { encoding: 'utf8' });
  chownSync(p, Number(stdout.trim()), Number(gid.trim()));
}

// ----------------------------------------------------------------------------- PostgreSQL

export class PrivatePostgres {
  readonly user = LOCAL_STACK.postgres.user;
  readonly password = LOCAL_STACK.postgres.password;
  readonly database = LOCAL_STACK.postgres.database;
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }
  get logFile(): string {
    return path.join(this.dir, 'postgres.log');
  }
  /** The config env for a pipeline on this server. */
  get env(): Record<string, string> {
    return { STREAMCTL_POSTGRES_HOST: '127.0.0.1', STREAMCTL_POSTGRES_PORT: String(this.port), STREAMCTL_POSTGRES_USER: this.user, STREAMCTL_POSTGRES_PASSWORD: this.password, STREAMCTL_POSTGRES_DATABASE: this.database };
  }

  /**
   * initdb (wal_level=logical, the stack's user and database), then start. `beforeStart` runs
   * between initdb and the first start with the data folder moved aside and back, so a test
   * can put it on a filesystem of its own (a small tmpfs for the full-disk test).
   */
  static async start(options: { prepareDataDir?: (dataDir: string) => Promise<void> } = {}): Promise<PrivatePostgres> {
    const dir = makeDir('pg');
    const server = new PrivatePostgres(dir, await freePort());
    track({ dir, killNow: () => server.killNow() });
    mkdirSync(path.join(dir, 'run'));
    const pwfile = path.join(dir, 'pw');
    writeFileSync(pwfile, server.password);
    for (const p of [dir, path.join(dir, 'run'), pwfile]) chownToPg(p);
    if (options.prepareDataDir) {
      mkdirSync(server.dataDir);
      await options.prepareDataDir(server.dataDir);
      chownToPg(server.dataDir);
    }
    const [cmd, args] = asPg(path.join(PG_BIN, 'initdb'), ['-D', server.dataDir, '-U', server.user, `--pwfile=${pwfile}`, '-E', 'UTF8', '--no-locale', '--no-sync', '--auth-local=trust', '--auth-host=scram-sha-256']);
    await run(cmd, args);
    writeFileSync(
      path.join(server.dataDir, 'postgresql.auto.conf'),
      [
        "listen_addresses = '127.0.0.1'",
        `port = ${server.port}`,
        `unix_socket_directories = '${path.join(dir, 'run')}'`,
        'wal_level = logical',
        'max_replication_slots = 10',
        'max_wal_senders = 10',
        'max_connections = 50',
        'shared_buffers = 16MB',
        'max_wal_size = 64MB',
        'min_wal_size = 32MB',
        // A throwaway cluster: durability off for speed, as the stack's. An immediate shutdown
        // still exercises crash recovery (the WAL is written, just not fsynced).
        'fsync = off',
        'full_page_writes = off',
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(server.dataDir, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost replication all 127.0.0.1/32 scram-sha-256\n');
    writeFileSync(server.logFile, '');
    chownToPg(server.logFile);
    await server.restart();
    const [c2, a2] = asPg(path.join(PG_BIN, 'createdb'), ['-h', path.join(dir, 'run'), '-p', String(server.port), '-U', server.user, server.database]);
    await run(c2, a2);
    return server;
  }

  private pgCtl(args: string[]): Promise<unknown> {
    const [cmd, a] = asPg(path.join(PG_BIN, 'pg_ctl'), ['-D', this.dataDir, ...args]);
    return run(cmd, a);
  }

  /** Starts the (stopped) server and waits until it accepts connections. */
  async restart(): Promise<void> {
    await this.pgCtl(['-l', this.logFile, '-w', '-t', '120', 'start']);
    await until('the private PostgreSQL', () => portOpen(this.port), 30_000, this.logFile);
  }

  /** `pg_ctl stop -m fast` (clients disconnected, a clean checkpoint) or `-m immediate` (no checkpoint: crash recovery on start). */
  async stop(mode: 'fast' | 'immediate'): Promise<void> {
    await this.pgCtl(['-m', mode, '-w', '-t', '60', 'stop']);
  }

  get running(): boolean {
    const pid = recordedPids(this.dir)[0];
    return pid !== undefined && alive(pid);
  }

  private killNow(): void {
    const pid = recordedPids(this.dir)[0];
    if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
  }

  async destroy(): Promise<void> {
    if (this.running) await this.stop('immediate').catch(() => this.killNow());
    live.forEach((s) => s.dir === this.dir && live.delete(s));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ----------------------------------------------------------------------------- Kafka

export class PrivateKafka {
  private child: ChildProcess | undefined;
  private startedBefore = 0;
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly controllerPort: number,
  ) {}

  get brokers(): string {
    return `127.0.0.1:${this.port}`;
  }
  get env(): Record<string, string> {
    return { STREAMCTL_KAFKA_BROKERS: this.brokers };
  }
  get dataDir(): string {
    return path.join(this.dir, 'data');
  }
  private get conf(): string {
    return path.join(this.dir, 'server.properties');
  }
  private get serverLog(): string {
    return path.join(this.dir, 'logs', 'server.log');
  }

  private jvm(): string[] {
    return [
      // Small: the machine is shared with the stack's broker and everyone's tests.
      '-Xmx256m',
      '-Xms64m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-XX:+ExitOnOutOfMemoryError',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${KAFKA_LOG4J}`,
      `-Dkafka.logs.dir=${path.join(this.dir, 'logs')}`,
      '-cp',
      `${KAFKA_LIBS}/*`,
    ];
  }

  /** A fresh single-node KRaft broker: own ports, own cluster id, storage formatted here. */
  static async start(options: { prepareDataDir?: (dataDir: string) => Promise<void> } = {}): Promise<PrivateKafka> {
    if (!existsSync(KAFKA_LIBS)) throw new Error(`no Kafka jars in ${KAFKA_LIBS}: run \`bash scripts/stack up\` first`);
    const dir = makeDir('kafka');
    const port = await freePort();
    let controllerPort = await freePort();
    while (controllerPort === port) controllerPort = await freePort();
    const server = new PrivateKafka(dir, port, controllerPort);
    track({ dir, killNow: () => server.killNow() });
    mkdirSync(server.dataDir, { recursive: true });
    mkdirSync(path.join(dir, 'logs'));
    if (options.prepareDataDir) await options.prepareDataDir(server.dataDir);
    const template = readFileSync(KAFKA_TEMPLATE, 'utf8');
    writeFileSync(
      server.conf,
      template.replaceAll('@KAFKA_PORT@', String(port)).replaceAll('@KAFKA_CONTROLLER_PORT@', String(controllerPort)).replaceAll('@KAFKA_DATA@', server.dataDir) +
        // Small and quick to stop: a fault test restarts it several times.
        '\nnum.io.threads=2\nnum.network.threads=1\nlog.segment.bytes=16777216\ncontrolled.shutdown.enable=true\n',
    );
    // base64url may start with '-', which kafka-storage's argument parser takes for an option
    // ("expected one argument", 1 start in 32): the `--cluster-id=` form keeps it a value.
    const clusterId = randomBytes(16).toString('base64url');
    await run('java', [...server.jvm(), 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, '-c', server.conf], { maxBuffer: 1 << 24 });
    await server.restart();
    return server;
  }

  private startedCount(): number {
    const logs = path.join(this.dir, 'logs');
    let n = 0;
    for (const f of readdirSync(logs)) if (f.startsWith('server.log')) n += readFileSync(path.join(logs, f), 'utf8').split('Kafka Server started').length - 1;
    return n;
  }

  /** Starts the (stopped) broker on its data and waits until it says it started and listens. */
  async restart(): Promise<void> {
    if (this.running) throw new Error('the private Kafka is already running');
    this.startedBefore = this.startedCount();
    const child = spawn('java', [...this.jvm(), 'kafka.Kafka', this.conf], { stdio: 'ignore', detached: false });
    this.child = child;
    writeFileSync(path.join(this.dir, 'server.pid'), String(child.pid));
    await until('the private Kafka', async () => {
      if (child.exitCode !== null) throw new Error(`the private Kafka exited with ${child.exitCode}: ${existsSync(this.serverLog) ? readFileSync(this.serverLog, 'utf8').slice(-3000) : ''}`);
      return this.startedCount() > this.startedBefore && (await portOpen(this.port));
    }, 180_000, this.serverLog);
  }

  /**
   * Aborts every transaction this broker holds open while its coordinator has forgotten it
   * (Kafka's "hanging transaction", which a SIGTERM restart sometimes leaves: README, "A Kafka
   * transaction that never ends"), with Kafka's own tool as that section tells an operator to.
   * Returns `topic-partition@start offset` of each one aborted.
   */
  async abortHangingTransactions(): Promise<string[]> {
    const tool = (...args: string[]) =>
      run('java', ['-Xmx128m', '-XX:TieredStopAtLevel=1', '-cp', `${KAFKA_LIBS}/*`, 'org.apache.kafka.tools.TransactionsCommand', '--bootstrap-server', this.brokers, ...args], { maxBuffer: 1 << 22 });
    // Open for over a minute with no transaction of the coordinator's behind it.
    const { stdout } = await tool('find-hanging', '--broker-id', '1', '--max-transaction-timeout', '1');
    const aborted: string[] = [];
    for (const line of stdout.split('\n').slice(1)) {
      const [topic, partition, , , , startOffset] = line.trim().split(/\s+/);
      if (!topic || !partition || !startOffset || !/^\d+$/.test(startOffset)) continue;
      try {
        await tool('abort', '--topic', topic, '--partition', partition, '--start-offset', startOffset);
        aborted.push(`${topic}-${partition}@${startOffset}`);
      } catch (err) {
        // Between find-hanging and abort the broker may end it itself (its transaction timeout
        // ran out): found hanging all the same, and no longer in the way.
        if (!/Could not find any open transactions/.test(String((err as { stderr?: string }).stderr ?? err))) throw err;
        aborted.push(`${topic}-${partition}@${startOffset} (ended by the broker before the abort)`);
      }
    }
    return aborted;
  }

  /** SIGTERM (a controlled shutdown) and wait for the JVM to exit; SIGKILL after 60 s. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited(child);
    clearTimeout(timer);
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The broker's log (for a test's failure message). */
  logTail(chars = 3000): string {
    return existsSync(this.serverLog) ? readFileSync(this.serverLog, 'utf8').slice(-chars) : '';
  }

  private killNow(): void {
    if (this.running) this.child!.kill('SIGKILL');
  }

  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    // FAULT_KEEP_DIR: the broker's log is kept there (a flaky restart is read in it afterwards).
    const keep = process.env['FAULT_KEEP_DIR'];
    if (keep && existsSync(this.serverLog)) writeFileSync(path.join(keep, `kafka-${path.basename(this.dir)}.log`), readFileSync(this.serverLog));
    live.forEach((s) => s.dir === this.dir && live.delete(s));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ----------------------------------------------------------------------------- Redis

export class PrivateRedis {
  private child: ChildProcess | undefined;
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly persistent: boolean,
  ) {}

  get env(): Record<string, string> {
    return { STREAMCTL_SINKS_REDIS_HOST: '127.0.0.1', STREAMCTL_SINKS_REDIS_PORT: String(this.port) };
  }

  /** `persistent`: an append-only file, so a restart keeps the data (else a restart comes back empty). */
  static async start(options: { persistent?: boolean } = {}): Promise<PrivateRedis> {
    const dir = makeDir('redis');
    const server = new PrivateRedis(dir, await freePort(), options.persistent ?? false);
    track({ dir, killNow: () => server.killNow() });
    await server.restart();
    return server;
  }

  async restart(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', this.persistent ? 'yes' : 'no'], { stdio: 'ignore' });
    this.child = child;
    writeFileSync(path.join(this.dir, 'server.pid'), String(child.pid));
    await until('the private Redis', async () => {
      if (child.exitCode !== null) throw new Error(`the private redis-server exited with ${child.exitCode}`);
      return portOpen(this.port);
    }, 30_000);
  }

  /** FLUSHALL on this private server (what an operator's FLUSHALL, or a restart without persistence, leaves). */
  async flushAll(): Promise<void> {
    await run('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), 'FLUSHALL']);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited(child);
  }

  private killNow(): void {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGKILL');
  }

  async destroy(): Promise<void> {
    this.killNow();
    if (this.child) await exited(this.child);
    live.forEach((s) => s.dir === this.dir && live.delete(s));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
