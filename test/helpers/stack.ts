import { randomBytes } from 'node:crypto';
import { defaultConfig, type Config } from '../../src/core/config/index.js';

/** The config of the local stack (`scripts/stack up`), as the integration tests use it. */
export const stackConfig = (): Config => defaultConfig();

/** A name no other test run uses, so tests never see each other's topics, tables or keys. */
export const unique = (prefix: string): string => `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
