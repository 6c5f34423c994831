import { InvalidArgumentError } from 'commander';

/** Flag value parsers: a bad value is a usage error (exit 2) naming the flag's rule. */
export const positiveInt =
  (max = Number.MAX_SAFE_INTEGER) =>
  (raw: string): number => {
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw new InvalidArgumentError(`must be an integer 1-${max}`);
    return Number(raw);
  };

export const positiveNumber = (raw: string): number => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number greater than 0');
  return n;
};

export const oneOf =
  <T extends string>(choices: readonly T[]) =>
  (raw: string): T => {
    if (!choices.includes(raw as T)) throw new InvalidArgumentError(`must be one of ${choices.join(', ')}`);
    return raw as T;
  };

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
