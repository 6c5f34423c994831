import pg from 'pg';
import type { PostgresConfig } from '../config/types.js';

// int8 and numeric arrive as text by default, which keeps every digit; leave it so.

export function makePgClient(config: PostgresConfig, extra: Partial<pg.ClientConfig> = {}): pg.Client {
  return new pg.Client({
    host: config.host,
    port: config.port,
    user: config.user,
    password: config.password,
    database: config.database,
    connectionTimeoutMillis: config.connectTimeoutMs,
    application_name: 'streamctl',
    ...extra,
  });
}

/**
 * A walsender connection in database mode (logical replication commands and simple SQL),
 * with the session settings every streamctl connection uses (see pg-types.ts).
 */
export function makeReplicationClient(config: PostgresConfig, applicationName: string, sessionOptions: string): pg.Client {
  return makePgClient(config, { application_name: applicationName, options: sessionOptions, replication: 'database' } as Partial<pg.ClientConfig>);
}
