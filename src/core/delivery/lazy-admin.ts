import type { OffsetsAdmin } from '../clients/rdkafka.js';

/**
 * One Kafka admin client, connected on first use and only then (most deliverers never need
 * it), and shared by callers that overlap its connect: during a Kafka outage a check waits
 * in connect() while a timer starts more, and each used to make (and, once the broker was
 * back, keep) its own client, which outlived stop() and kept a stopped stream alive.
 */
export class LazyAdmin {
  private admin: { client: OffsetsAdmin; connected: Promise<void> } | null = null;

  constructor(private readonly kafka: { admin(): OffsetsAdmin }) {}

  async get(): Promise<OffsetsAdmin> {
    if (!this.admin) {
      const client = this.kafka.admin();
      const admin = { client, connected: client.connect() };
      this.admin = admin;
      // A failed connect is forgotten, so the next call tries a new client.
      admin.connected.catch(() => {
        if (this.admin === admin) this.admin = null;
      });
    }
    const { client, connected } = this.admin;
    await connected;
    return client;
  }

  async stop(): Promise<void> {
    const admin = this.admin;
    this.admin = null;
    await admin?.client.disconnect().catch(() => {});
  }
}
