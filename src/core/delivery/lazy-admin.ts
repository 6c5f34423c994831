import type { Admin, Kafka } from '../clients/rdkafka.js';

/** One Kafka admin client, connected on first use and only then (most deliverers never need it). */
export class LazyAdmin {
  private admin: Admin | null = null;

  constructor(private readonly kafka: Kafka) {}

  async get(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    return this.admin;
  }

  async stop(): Promise<void> {
    await this.admin?.disconnect().catch(() => {});
    this.admin = null;
  }
}
