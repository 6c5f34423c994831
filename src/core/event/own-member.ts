/**
 * A column may be named "__proto__" (a quoted identifier): assigned to a plain object, that
 * name sets the object's prototype instead of adding a member, and the column vanished from
 * the row (found by the capjson engineer of #11). Defined as an own member, it is a member
 * like any other (JSON.stringify and Object.keys see it). Everything that builds a row by
 * column name (decoding, enrich's reshape) sets its members with this.
 */
const PROTO = '__proto__';

export function setOwn(row: Record<string, unknown>, name: string, value: unknown): void {
  if (name === PROTO) Object.defineProperty(row, name, { value, enumerable: true, writable: true, configurable: true });
  else row[name] = value;
}
