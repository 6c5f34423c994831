export type * from './types.js';
export { defaultConfig } from './defaults.js';
export { loadConfig, type LoadConfigOptions } from './load.js';
export { envNameFor } from './env.js';
export { redactConfig, Redactor, REDACTED, SECRET_PATHS } from './secrets.js';
export { derivedNames, type DerivedNames } from './names.js';
export { deliverySecrets } from './file-secrets.js';
