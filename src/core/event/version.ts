import type { ChangeEvent } from './envelope.js';

/**
 * Orders every change of one row: commit LSN (16 hex digits) then position (10 digits).
 * A sink keeps a row's version and ignores any event whose version is not newer, so a
 * replay, a re-delivery or a late backfill read never puts an older value over a newer one.
 *
 * A backfill read carries the consistent point C of the snapshot it was read in (see
 * src/core/backfill/snapshot.ts): that snapshot sees exactly the transactions committed
 * before C. Its version is `C:-`, which sorts after every change committed before C and
 * before every change committed at or after C ('-' sorts before any digit), so the
 * newer of a read and a change always wins, whichever reaches the sink first.
 */
export function eventVersion(event: Pick<ChangeEvent, 'lsn' | 'position' | 'op'>): string {
  const lsn = event.lsn ?? '0/0';
  const [hi, lo] = lsn.split('/') as [string, string];
  const hex = ((BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`)).toString(16).toUpperCase().padStart(16, '0');
  if (event.op === 'read') return `${hex}:-`;
  return `${hex}:${String(event.position ?? 0).padStart(10, '0')}`;
}
