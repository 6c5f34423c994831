/**
 * Basic-auth userinfo in a URL is a secret: shown as [redacted]. Text that is not a URL
 * is not echoed at all (it may be a secret pasted in the wrong place).
 */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.username || u.password) {
      u.username = u.username ? '[redacted]' : '';
      u.password = '';
    }
    // URL percent-encodes the brackets of a username: shown to a person, it should read as written.
    return u.toString().replace('//%5Bredacted%5D@', '//[redacted]@');
  } catch {
    return '(not a URL)';
  }
}
