/** A value's IoC type from its shape, for untyped lists (`--type auto`). */
import { canonicalHost, refang } from '../normalize.js';
import { isIP } from 'node:net';

export function guessType(value: string): string | undefined {
  const v = refang(value);
  if (/^[0-9a-f]{32}$/i.test(v)) return 'FileHash-MD5';
  if (/^[0-9a-f]{40}$/i.test(v)) return 'FileHash-SHA1';
  if (/^[0-9a-f]{64}$/i.test(v)) return 'FileHash-SHA256';
  if (/^[0-9a-f]{128}$/i.test(v)) return 'FileHash-SHA512';
  if (/^CVE-\d{4}-\d+$/i.test(v)) return 'CVE';
  // Dotted quads are addresses even when malformed (then rejected as such, not as names).
  if (isIP(v.replace(/\/\d+$/, '')) || /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(v)) return 'IP';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) return 'URL';
  if (/^[^@\s]+@[^@\s]+$/.test(v)) return 'email';
  if (canonicalHost(v)) return 'hostname';
  return undefined;
}
