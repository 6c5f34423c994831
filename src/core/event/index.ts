export * from './envelope.js';
export * from './identity.js';
export * from './lsn.js';
export { validateEvent, EVENT_SCHEMA_V1, type EventValidation } from './validate.js';
export { encodeEvent, encodeEventText, oversizeLogFields, type EncodedEvent, type EncodedEventText } from './oversize.js';
