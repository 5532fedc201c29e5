/**
 * Canonical IoC values, so the IoC join stays a plain equality on (ioc_type, ioc).
 *
 * - Types are the seed's OTX names: IPv4, IPv6, domain, hostname, URL, FileHash-MD5,
 *   FileHash-SHA1, FileHash-SHA256, FileHash-SHA512, FileHash-IMPHASH, FileHash-TLSH,
 *   FileHash-SSDEEP, email, CVE. Networks are their own types, `IPv4-CIDR` and `IPv6-CIDR`
 *   (value = network address/prefix, host bits cleared): an equality join on IPv4 stays a hash
 *   join, and a range match for CIDRs is a separate, small join. A /32 (/128) is an IPv4 (IPv6).
 *   Feed aliases (OTX `CIDR`, MISP `ip-dst`, ThreatFox `ip:port`, `md5`, `sha256` …) map here.
 * - Defanged values are refanged first (`hxxp`, `[.]`, `(dot)`, `[:]`, `[@]` …).
 * - Hashes, host names, domains and e-mail addresses are lower-case; ssdeep keeps its case
 *   (its base64 alphabet is case-sensitive). IDN host names are stored as punycode (what DNS
 *   and Falcon's DnsRequest carry). URLs go through the WHATWG parser: scheme and host
 *   lower-case, default port dropped, path percent-encoded, fragment removed.
 * - Anything malformed is rejected with a reason; it is never stored.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';

export const IOC_TYPES = [
  'IPv4',
  'IPv6',
  'IPv4-CIDR',
  'IPv6-CIDR',
  'domain',
  'hostname',
  'URL',
  'FileHash-MD5',
  'FileHash-SHA1',
  'FileHash-SHA256',
  'FileHash-SHA512',
  'FileHash-IMPHASH',
  'FileHash-TLSH',
  'FileHash-SSDEEP',
  'email',
  'CVE',
] as const;
export type IocType = (typeof IOC_TYPES)[number];

export type Normalized = { ok: true; ioc_type: IocType; ioc: string } | { ok: false; reason: string };

/**
 * Type names feeds use → Talon's. `IP` and `CIDR` pick v4/v6 from the value. Keys are
 * lower-case; lookups lower-case the given name.
 */
const TYPE_ALIASES: Record<string, IocType | 'IP' | 'CIDR'> = {
  ipv4: 'IPv4',
  'ipv4-addr': 'IPv4',
  ipv6: 'IPv6',
  'ipv6-addr': 'IPv6',
  ip: 'IP',
  'ip-dst': 'IP',
  'ip-src': 'IP',
  ip_address: 'IP',
  cidr: 'CIDR',
  'ipv4-cidr': 'CIDR',
  'ipv6-cidr': 'CIDR',
  domain: 'domain',
  'domain-name': 'domain',
  hostname: 'hostname',
  host: 'hostname',
  fqdn: 'hostname',
  url: 'URL',
  uri: 'URL',
  link: 'URL',
  md5: 'FileHash-MD5',
  md5_hash: 'FileHash-MD5',
  'filehash-md5': 'FileHash-MD5',
  sha1: 'FileHash-SHA1',
  'sha-1': 'FileHash-SHA1',
  sha1_hash: 'FileHash-SHA1',
  'filehash-sha1': 'FileHash-SHA1',
  sha256: 'FileHash-SHA256',
  'sha-256': 'FileHash-SHA256',
  sha256_hash: 'FileHash-SHA256',
  'filehash-sha256': 'FileHash-SHA256',
  sha512: 'FileHash-SHA512',
  'sha-512': 'FileHash-SHA512',
  'filehash-sha512': 'FileHash-SHA512',
  imphash: 'FileHash-IMPHASH',
  'filehash-imphash': 'FileHash-IMPHASH',
  tlsh: 'FileHash-TLSH',
  'filehash-tlsh': 'FileHash-TLSH',
  ssdeep: 'FileHash-SSDEEP',
  'filehash-ssdeep': 'FileHash-SSDEEP',
  email: 'email',
  'email-addr': 'email',
  'email-src': 'email',
  'email-dst': 'email',
  cve: 'CVE',
  vulnerability: 'CVE',
};

/** Talon's type for a feed's type name, or undefined when Talon does not match that type. */
export function canonicalType(name: string): IocType | 'IP' | 'CIDR' | undefined {
  // Feeds repeat a handful of type names a million times: remember the answers.
  let t = typeCache.get(name);
  if (t === undefined && !typeCache.has(name)) {
    t = Object.hasOwn(TYPE_ALIASES, name.trim().toLowerCase())
      ? TYPE_ALIASES[name.trim().toLowerCase()]
      : undefined;
    if (typeCache.size < 1000) typeCache.set(name, t);
  }
  return t;
}

const typeCache = new Map<string, IocType | 'IP' | 'CIDR' | undefined>();

/** Any of these characters, or a leading hxxp/fxp, means a value may be defanged. */
const DEFANG_MARK = /[[({\\]/;
const DEFANGED_SCHEME = /^(?:h(?:xx|\*\*)p|fxp)/i;

/** Undoes the usual defanging of indicators in reports and feeds. */
export function refang(value: string): string {
  const v = value.trim();
  // Most values carry no defanging at all: skip the replacement chain for them.
  const c0 = v.charCodeAt(0) | 0x20;
  if (!DEFANG_MARK.test(v) && !((c0 === 0x68 || c0 === 0x66) && DEFANGED_SCHEME.test(v))) return v;
  return v
    .replace(/^h(?:xx|XX|\*\*)p(s?)(?=[:[])/i, 'http$1')
    .replace(/^fxp(?=[:[])/i, 'ftp')
    .replace(/\[:\/\/\]|\(:\/\/\)|\[:\]\/\/|\[:\/\/\]/g, '://')
    .replace(/\[:\]|\(:\)|\{:\}/g, ':')
    .replace(/\s*(?:\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\}|\[DOT\]|\(DOT\))\s*/g, '.')
    .replace(/\s*(?:\[@\]|\(@\)|\{@\}|\[at\]|\(at\)|\{at\}|\[AT\]|\(AT\))\s*/g, '@')
    .replace(/\\\./g, '.');
}

const HEX = /^[0-9a-f]+$/;
const HASH_HEX_LENGTHS: Partial<Record<IocType, number>> = {
  'FileHash-MD5': 32,
  'FileHash-SHA1': 40,
  'FileHash-SHA256': 64,
  'FileHash-SHA512': 128,
  'FileHash-IMPHASH': 32,
};

function reject(reason: string): Normalized {
  return { ok: false, reason };
}

function ipv4(v: string): string | undefined {
  // node's isIPv4 refuses leading zeros (octal ambiguity) and out-of-range octets.
  return isIPv4(v) ? v : undefined;
}

function ipv6(v: string): string | undefined {
  const bare = v.replace(/^\[|\]$/g, '');
  if (!isIPv6(bare) || bare.includes('%')) return undefined;
  // The WHATWG host serializer gives the RFC 5952 form (lower-case, longest zero run ::).
  return new URL(`http://[${bare}]/`).hostname.replace(/^\[|\]$/g, '');
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

function ipv6ToBigInt(ip: string): bigint {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function bigIntToIpv6(n: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  return ipv6(groups.join(':'))!;
}

function cidr(v: string): Normalized {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(v);
  if (!m) return reject('CIDR: not address/prefix');
  const prefix = Number(m[2]);
  const v4 = ipv4(m[1]);
  if (v4) {
    if (prefix > 32) return reject('CIDR: IPv4 prefix above 32');
    if (prefix === 32) return { ok: true, ioc_type: 'IPv4', ioc: v4 };
    const size = 2 ** (32 - prefix);
    const net = Math.floor(ipv4ToInt(v4) / size) * size;
    return { ok: true, ioc_type: 'IPv4-CIDR', ioc: `${intToIpv4(net)}/${prefix}` };
  }
  const v6 = ipv6(m[1]);
  if (v6) {
    if (prefix > 128) return reject('CIDR: IPv6 prefix above 128');
    if (prefix === 128) return { ok: true, ioc_type: 'IPv6', ioc: v6 };
    const mask = ((1n << BigInt(prefix)) - 1n) << BigInt(128 - prefix);
    return { ok: true, ioc_type: 'IPv6-CIDR', ioc: `${bigIntToIpv6(ipv6ToBigInt(v6) & mask)}/${prefix}` };
  }
  return reject('CIDR: malformed address');
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
/** Two or more LABELs joined by dots (no leading *. and no IDN: those take the long way). */
const PLAIN_HOST = /^(?:(?!-)[a-z0-9_-]{1,63}(?<!-)\.)+(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
/** A dotted quad is an address, not a name: the last label is all digits. */
const NUMERIC_LABEL = /\.\d+$/;

/** A DNS name in canonical form, or undefined. Requires at least two labels. */
export function canonicalHost(v: string): string | undefined {
  let h = v.trim().toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  // Fast path for plain ASCII names (one regex instead of a split and a test per label).
  if (h.length <= 253 && PLAIN_HOST.test(h)) return NUMERIC_LABEL.test(h) ? undefined : h;
  if (h.startsWith('*.')) h = h.slice(2);
  if (/[^\x21-\x7e]/.test(h)) {
    const ascii = domainToASCII(h);
    if (!ascii) return undefined;
    h = ascii;
  }
  if (h.length === 0 || h.length > 253) return undefined;
  const labels = h.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return undefined;
  // A dotted quad is an address, not a name.
  if (/^\d+$/.test(labels[labels.length - 1])) return undefined;
  return h;
}

/**
 * http(s) URLs the WHATWG serializer returns unchanged: lower-case scheme and host (plain
 * ASCII labels, not ending in a number, no punycode), no user info or port, a path and query
 * of characters neither percent-encoded nor resolved (no %, no dot segments, no ' in the
 * query), no fragment. Those skip the URL parser; anything else goes through it.
 */
const CANONICAL_URL =
  /^https?:\/\/(?:(?!-)[a-z0-9_-]{1,63}(?<!-)\.)+(?!xn--)[a-z_-][a-z0-9_-]{0,62}(?<!-)(\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*)(?:\?[A-Za-z0-9\-._~!$&()*+,;=:@/?]+)?$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|\?|$)/;

function url(v: string): Normalized {
  const m = CANONICAL_URL.exec(v);
  if (m && !DOT_SEGMENT.test(m[1]) && !v.includes('xn--')) return { ok: true, ioc_type: 'URL', ioc: v };
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return reject('URL: not parseable');
  }
  if (!u.hostname && !/^(file|data|mailto):$/.test(u.protocol)) return reject('URL: no host');
  if (!/^[a-z][a-z0-9+.-]*:$/.test(u.protocol)) return reject('URL: bad scheme');
  if (!u.hostname) return reject('URL: no host');
  u.hash = '';
  return { ok: true, ioc_type: 'URL', ioc: u.href };
}

/**
 * Canonicalizes and validates one indicator. `type` is Talon's type or a feed alias (see
 * canonicalType); an unknown type is rejected with reason `unsupported type <name>`.
 */
export function normalizeIoc(type: string, value: unknown): Normalized {
  const t = canonicalType(type);
  if (!t) return reject(`unsupported type ${type}`);
  if (value === null || value === undefined) return reject('empty value');
  const raw = refang(String(value));
  if (raw === '') return reject('empty value');
  switch (t) {
    case 'IP': {
      if (raw.includes('/')) return cidr(raw);
      const v4 = ipv4(raw);
      if (v4) return { ok: true, ioc_type: 'IPv4', ioc: v4 };
      const v6 = ipv6(raw);
      return v6 ? { ok: true, ioc_type: 'IPv6', ioc: v6 } : reject('IP: malformed address');
    }
    case 'CIDR':
      return raw.includes('/') ? cidr(raw) : normalizeIoc('IP', raw);
    case 'IPv4': {
      if (raw.includes('/')) return cidr(raw);
      const v4 = ipv4(raw);
      return v4 ? { ok: true, ioc_type: 'IPv4', ioc: v4 } : reject('IPv4: malformed address');
    }
    case 'IPv6': {
      if (raw.includes('/')) return cidr(raw);
      const v6 = ipv6(raw);
      return v6 ? { ok: true, ioc_type: 'IPv6', ioc: v6 } : reject('IPv6: malformed address');
    }
    case 'IPv4-CIDR':
    case 'IPv6-CIDR':
      return cidr(raw);
    case 'domain':
    case 'hostname': {
      const h = canonicalHost(raw);
      return h ? { ok: true, ioc_type: t, ioc: h } : reject(`${t}: malformed name`);
    }
    case 'URL':
      return url(raw);
    case 'FileHash-TLSH': {
      // TLSH digests: 70 hex digits, version 4 prefixes "T1" (72 characters).
      const h = raw.toLowerCase();
      return /^(t1)?[0-9a-f]{70}$/.test(h)
        ? { ok: true, ioc_type: t, ioc: h }
        : reject('FileHash-TLSH: not 70 hex digits (optionally T1-prefixed)');
    }
    case 'FileHash-SSDEEP':
      return /^\d+:[A-Za-z0-9/+]+:[A-Za-z0-9/+]+$/.test(raw)
        ? { ok: true, ioc_type: t, ioc: raw }
        : reject('FileHash-SSDEEP: not blocksize:hash:hash');
    case 'email': {
      const at = raw.lastIndexOf('@');
      if (at <= 0) return reject('email: no local part or @');
      const local = raw.slice(0, at).toLowerCase();
      const host = canonicalHost(raw.slice(at + 1));
      if (!host || /[\s<>(),;:"[\]]/.test(local)) return reject('email: malformed address');
      return { ok: true, ioc_type: t, ioc: `${local}@${host}` };
    }
    case 'CVE': {
      const c = raw.toUpperCase();
      return /^CVE-\d{4}-\d{4,}$/.test(c)
        ? { ok: true, ioc_type: t, ioc: c }
        : reject('CVE: not CVE-YYYY-NNNN');
    }
    default: {
      const len = HASH_HEX_LENGTHS[t];
      const h = raw.toLowerCase();
      if (len === undefined) return reject(`unsupported type ${type}`);
      return h.length === len && HEX.test(h)
        ? { ok: true, ioc_type: t, ioc: h }
        : reject(`${t}: not ${len} hex digits`);
    }
  }
}

/** Whether an IPv4 address lies inside an IPv4 CIDR (canonical values). */
export function ipv4InCidr(ip: string, network: string): boolean {
  const [net, p] = network.split('/');
  const size = 2 ** (32 - Number(p));
  return Math.floor(ipv4ToInt(ip) / size) === Math.floor(ipv4ToInt(net) / size);
}

/** Whether an IPv6 address lies inside an IPv6 CIDR (canonical values). */
export function ipv6InCidr(ip: string, network: string): boolean {
  const [net, p] = network.split('/');
  const shift = BigInt(128 - Number(p));
  return ipv6ToBigInt(ip) >> shift === ipv6ToBigInt(net) >> shift;
}
