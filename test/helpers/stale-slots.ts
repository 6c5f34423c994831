/**
 * Which replication slots and publications a killed test run left behind. Test runs name
 * them with `unique()` (test/helpers/stack.ts): `<prefix>_<Date.now() in base 36>_<6 hex>`,
 * as `streamctl_<name>` (a pipeline's slot and publication) or `<name>_witness` (the crash
 * tests' second slot). A slot is stale when it is inactive and its name carries a time
 * older than `minAgeMs`: a run still going (another suite on the same stack) is left alone.
 */
const UNIQUE = /^(?:streamctl_)?[a-z][a-z0-9]*(?:_[a-z0-9]+)*?_([0-9a-z]{6,10})_[0-9a-f]{6}(?:_witness)?$/;

export function createdAt(name: string): number | null {
  const m = UNIQUE.exec(name);
  if (!m) return null;
  const ms = parseInt(m[1]!, 36);
  // Plausible Date.now() values only (2020 to 2100): anything else is not a unique() name.
  return ms > 1_577_836_800_000 && ms < 4_102_444_800_000 ? ms : null;
}

export function isStale(name: string, now: number, minAgeMs: number): boolean {
  const at = createdAt(name);
  return at !== null && now - at > minAgeMs;
}
