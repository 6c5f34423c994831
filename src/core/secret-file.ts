import { readFileSync } from 'node:fs';

/** Reads a secret from the config or its file; the caller adds it to the redactor. */
export function secretOf(inline: string, file: string): string {
  return inline || (file ? readFileSync(file, 'utf8').trim() : '');
}
