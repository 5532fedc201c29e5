/**
 * Key rules shared by every ObjectStore, so a lake behaves the same on disk and on S3.
 *
 * Keys are '/'-separated, relative to the lake root. A key that could climb out of the root
 * (`..`), or that names nothing (empty segment, `.`), is a bug or an attack — table names
 * come from FDR event names and user SQL — so it is refused rather than normalised.
 */
export function checkKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new Error('object key must be a non-empty string');
  if (key.startsWith('/'))
    throw new Error(`object key must be relative to the lake root: ${JSON.stringify(key)}`);
  if (key.includes('\\') || key.includes('\0')) {
    throw new Error(`object key must not contain '\\' or NUL: ${JSON.stringify(key)}`);
  }
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new Error(`object key has an empty, '.' or '..' segment: ${JSON.stringify(key)}`);
    }
  }
  return key;
}

/** A list prefix may be '' (everything) or end with '/'; it follows the same segment rules. */
export function checkPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  return prefix;
}

/** A folder prefix: '' (the root) or a key-like path ending in '/'. */
export function checkFolderPrefix(prefix: string): string {
  if (prefix !== '' && !prefix.endsWith('/')) {
    throw new Error(`folder prefix must be '' or end with '/': ${JSON.stringify(prefix)}`);
  }
  return checkPrefix(prefix);
}

/** S3 lists keys in UTF-8 byte order; sorting the same way keeps both stores' `list` identical. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A file-name-safe suffix for staging paths (keeps the extension DuckDB may look at). */
export function checkSuffix(suffix: string): string {
  if (/[/\\\0]/.test(suffix) || suffix === '.' || suffix === '..') {
    throw new Error(`bad staging suffix: ${JSON.stringify(suffix)}`);
  }
  return suffix;
}
