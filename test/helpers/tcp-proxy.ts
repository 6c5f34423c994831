import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP forwarder to a shared server, so a test can take that server away from
 * one pipeline without touching it: `cut()` closes the listening port and every connection
 * through it (what a stopped server looks like from the client's side: connections reset,
 * new ones refused), `restore()` listens on the same port again. The shared server itself
 * never notices more than clients that went away.
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async open(port = 0): Promise<number> {
    const server = createServer((client) => {
      const upstream = createConnection({ host: this.targetHost, port: this.targetPort });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  /** Nothing listens on the port any more and every open connection is reset. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens on the same port again. */
  async restore(): Promise<void> {
    await this.open(this.port);
  }
}
