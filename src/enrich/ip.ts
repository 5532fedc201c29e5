/**
 * IP address parsing and classification for enrichment.
 *
 * Falcon writes addresses as text (`aip`, `RemoteAddressIP4`, `RemoteAddressIP6`, …), sometimes
 * in long form (`0:0:0:0:0:0:0:1`), sometimes several in one field. Only public (globally
 * routable) addresses are worth a GeoIP/ASN lookup: the location of 10.0.0.5 or fe80::1 is
 * wherever the sensor is, and a database answer for them is noise. Everything else is
 * classified from the IANA special-purpose registries (RFC 6890 and successors).
 */

/** What kind of address a value is; only `public` addresses are looked up. */
export type IpClass =
  | 'public'
  | 'private'
  | 'loopback'
  | 'link_local'
  | 'cgnat'
  | 'multicast'
  | 'reserved'
  | 'documentation'
  | 'invalid';

/** An IPv4 address as an unsigned 32-bit number. */
export interface Ipv4 {
  family: 4;
  v4: number;
}

/** An IPv6 address as four big-endian 32-bit words. */
export interface Ipv6 {
  family: 6;
  words: Uint32Array;
}

export type ParsedIp = Ipv4 | Ipv6;

export interface ClassifiedIp {
  ip_class: IpClass;
  /**
   * The address to look up for `public` ones: IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96)
   * and 6to4 (2002::/16) IPv6 addresses carry an IPv4 address, which is what the databases know.
   */
  address: ParsedIp | null;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parses dotted-quad IPv4 in `s[start, end)`, or returns -1. Leading zeros are refused:
 * `010.1.1.1` is octal to inet_aton and decimal to others, so it has no single meaning.
 */
function parseV4Range(s: string, start: number, end: number): number {
  let value = 0;
  let parts = 0;
  let i = start;
  while (i <= end) {
    const partStart = i;
    let octet = 0;
    while (i < end && isDigit(s.charCodeAt(i))) {
      octet = octet * 10 + (s.charCodeAt(i) - 48);
      i++;
    }
    const len = i - partStart;
    if (len === 0 || len > 3 || octet > 255) return -1;
    if (len > 1 && s.charCodeAt(partStart) === 48) return -1;
    value = value * 256 + octet;
    parts++;
    if (i === end) break;
    if (s.charCodeAt(i) !== 46 || parts === 4) return -1;
    i++;
  }
  return parts === 4 ? value : -1;
}

/** Parses dotted-quad IPv4 text into an unsigned 32-bit number, or returns -1. */
export function parseIpv4(s: string): number {
  return parseV4Range(s, 0, s.length);
}

/**
 * Parses IPv6 text (compressed `::`, long form, embedded dotted IPv4, `%zone` suffix which
 * is dropped) into four 32-bit words, or returns null.
 */
export function parseIpv6(s: string): Uint32Array | null {
  let end = s.length;
  const pct = s.indexOf('%');
  if (pct >= 0) {
    if (pct === end - 1) return null;
    end = pct;
  }
  if (end < 2) return null;
  const groups = new Array<number>(8);
  let n = 0;
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return null;
    gap = 0;
    i = 2;
    if (i === end) return new Uint32Array(4);
  }
  while (i < end) {
    if (n === 8) return null;
    const groupStart = i;
    let value = 0;
    let h: number;
    while (i < end && i - groupStart < 5 && (h = hexValue(s.charCodeAt(i))) >= 0) {
      value = value * 16 + h;
      i++;
    }
    if (i < end && s.charCodeAt(i) === 46) {
      // Embedded IPv4 takes the last 32 bits.
      if (n > 6) return null;
      const v4 = parseV4Range(s, groupStart, end);
      if (v4 < 0) return null;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      break;
    }
    const len = i - groupStart;
    if (len === 0 || len > 4) return null;
    groups[n++] = value;
    if (i === end) break;
    if (s.charCodeAt(i) !== 58) return null;
    i++;
    if (i < end && s.charCodeAt(i) === 58) {
      if (gap >= 0) return null;
      gap = n;
      i++;
    } else if (i === end) {
      return null; // trailing single ':'
    }
  }
  const out = new Uint32Array(4);
  let expanded: number[];
  if (gap >= 0) {
    if (n === 8) return null; // '::' must stand for at least one group
    expanded = new Array<number>(8).fill(0);
    for (let k = 0; k < gap; k++) expanded[k] = groups[k];
    const tail = n - gap;
    for (let k = 0; k < tail; k++) expanded[8 - tail + k] = groups[gap + k];
  } else {
    if (n !== 8) return null;
    expanded = groups;
  }
  for (let k = 0; k < 4; k++) out[k] = ((expanded[2 * k] << 16) | expanded[2 * k + 1]) >>> 0;
  return out;
}

/** Parses one IPv4 or IPv6 address (no surrounding whitespace), or returns null. */
export function parseIp(s: string): ParsedIp | null {
  if (s.indexOf(':') >= 0) {
    const words = parseIpv6(s);
    return words ? { family: 6, words } : null;
  }
  const v4 = parseIpv4(s);
  return v4 >= 0 ? { family: 4, v4 } : null;
}

export function formatIpv4(v4: number): string {
  return `${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}`;
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
export function formatIpv6(words: ArrayLike<number>): string {
  const g: number[] = [];
  for (let k = 0; k < 4; k++) g.push(words[k] >>> 16, words[k] & 0xffff);
  let bestStart = -1;
  let bestLen = 1;
  for (let k = 0; k < 8;) {
    if (g[k] !== 0) {
      k++;
      continue;
    }
    let j = k;
    while (j < 8 && g[j] === 0) j++;
    if (j - k > bestLen) {
      bestStart = k;
      bestLen = j - k;
    }
    k = j;
  }
  if (bestStart < 0) return g.map((x) => x.toString(16)).join(':');
  const head = g.slice(0, bestStart).map((x) => x.toString(16));
  const tail = g.slice(bestStart + bestLen).map((x) => x.toString(16));
  return head.join(':') + '::' + tail.join(':');
}

export function formatIp(ip: ParsedIp): string {
  return ip.family === 4 ? formatIpv4(ip.v4) : formatIpv6(ip.words);
}

function inV4(v4: number, net: number, bits: number): boolean {
  if (bits === 0) return true;
  const mask = bits === 32 ? 0xffffffff : ~(0xffffffff >>> bits);
  return (v4 & mask) >>> 0 === net >>> 0;
}

/** IPv4 special-purpose blocks, most specific first where they nest. */
const V4_SPECIAL: ReadonlyArray<readonly [number, number, IpClass]> = [
  [0x00000000, 8, 'reserved'], // 0.0.0.0/8 "this network", includes the unspecified 0.0.0.0
  [0x0a000000, 8, 'private'], // 10/8, RFC 1918
  [0x64400000, 10, 'cgnat'], // 100.64/10, RFC 6598 shared address space
  [0x7f000000, 8, 'loopback'], // 127/8
  [0xa9fe0000, 16, 'link_local'], // 169.254/16
  [0xac100000, 12, 'private'], // 172.16/12, RFC 1918
  [0xc0000000, 24, 'reserved'], // 192.0.0/24 IETF protocol assignments
  [0xc0000200, 24, 'documentation'], // 192.0.2/24 TEST-NET-1
  [0xc0a80000, 16, 'private'], // 192.168/16, RFC 1918
  [0xc6120000, 15, 'reserved'], // 198.18/15 benchmarking, RFC 2544
  [0xc6336400, 24, 'documentation'], // 198.51.100/24 TEST-NET-2
  [0xcb007100, 24, 'documentation'], // 203.0.113/24 TEST-NET-3
  [0xe0000000, 4, 'multicast'], // 224/4
  [0xf0000000, 4, 'reserved'], // 240/4 future use, includes broadcast 255.255.255.255
];

export function classifyIpv4(v4: number): IpClass {
  for (const [net, bits, cls] of V4_SPECIAL) if (inV4(v4, net, bits)) return cls;
  return 'public';
}

function classifyEmbeddedV4(v4: number): ClassifiedIp {
  const cls = classifyIpv4(v4);
  return { ip_class: cls, address: cls === 'public' ? { family: 4, v4 } : null };
}

/** Classifies an IPv6 address; IPv4-carrying forms are classified by their IPv4 address. */
export function classifyIpv6(w: Uint32Array): ClassifiedIp {
  const [w0, w1, w2, w3] = w;
  const top16 = w0 >>> 16;
  if (w0 === 0 && w1 === 0) {
    if (w2 === 0 && w3 === 0) return { ip_class: 'reserved', address: null }; // :: unspecified
    if (w2 === 0 && w3 === 1) return { ip_class: 'loopback', address: null }; // ::1
    if (w2 === 0xffff) return classifyEmbeddedV4(w3); // ::ffff:0:0/96 IPv4-mapped
    return { ip_class: 'reserved', address: null }; // ::/96 IPv4-compatible (deprecated) and ::/8 rest
  }
  if (w0 === 0x0064ff9b && w1 === 0 && w2 === 0) return classifyEmbeddedV4(w3); // NAT64 well-known prefix
  if (w0 === 0x0064ff9b && w1 >>> 16 === 0x0001) return { ip_class: 'private', address: null }; // 64:ff9b:1::/48 local-use NAT64
  if (w0 === 0x01000000 && w1 === 0) return { ip_class: 'reserved', address: null }; // 100::/64 discard-only
  if (w0 === 0x20010db8) return { ip_class: 'documentation', address: null }; // 2001:db8::/32
  if (w0 >>> 12 === 0x3fff0) return { ip_class: 'documentation', address: null }; // 3fff::/20, RFC 9637
  if (w0 === 0x20010002 && w1 >>> 16 === 0) return { ip_class: 'reserved', address: null }; // 2001:2::/48 benchmarking
  if (w0 >>> 4 === 0x2001001) return { ip_class: 'reserved', address: null }; // 2001:10::/28 ORCHID (deprecated)
  if (top16 === 0x2002) return classifyEmbeddedV4(((w0 & 0xffff) * 0x10000 + (w1 >>> 16)) >>> 0); // 6to4
  if (w0 >>> 25 === 0x7e) return { ip_class: 'private', address: null }; // fc00::/7 unique local
  if (w0 >>> 22 === 0x3fa) return { ip_class: 'link_local', address: null }; // fe80::/10
  if (w0 >>> 22 === 0x3fb) return { ip_class: 'reserved', address: null }; // fec0::/10 site-local (deprecated)
  if (w0 >>> 24 === 0xff) return { ip_class: 'multicast', address: null }; // ff00::/8
  if (w0 >>> 29 !== 1) return { ip_class: 'reserved', address: null }; // outside 2000::/3 global unicast (unallocated, 5f00::/16 SRv6 SIDs, …)
  return { ip_class: 'public', address: { family: 6, words: w } };
}

/** Classifies one address string (no whitespace inside); `address` is set for public ones. */
export function classifyOne(s: string): ClassifiedIp {
  const ip = parseIp(s);
  if (!ip) return { ip_class: 'invalid', address: null };
  if (ip.family === 4) return classifyEmbeddedV4(ip.v4);
  return classifyIpv6(ip.words);
}

const SEPARATORS = /[\s,]+/;

/**
 * Classifies a field value. Falcon's `aip` sometimes holds several space-separated addresses
 * (a host seen behind several egress IPs in one event); the first valid public one is the one
 * enriched. Without a public one the first valid address gives the class; without any valid
 * address the class is `invalid`.
 */
export function classifyValue(value: string): ClassifiedIp {
  const trimmed = value.trim();
  if (!SEPARATORS.test(trimmed)) return classifyOne(trimmed);
  let firstValid: ClassifiedIp | null = null;
  for (const part of trimmed.split(SEPARATORS)) {
    if (part === '') continue;
    const c = classifyOne(part);
    if (c.ip_class === 'public') return c;
    if (!firstValid && c.ip_class !== 'invalid') firstValid = c;
  }
  return firstValid ?? { ip_class: 'invalid', address: null };
}

/**
 * The CIDR block around `v4` that lies inside [start, end] and is as large as possible: a
 * range database (start/end rows) turned into the `as_network` a prefix tree would report.
 */
export function v4NetworkWithin(v4: number, start: number, end: number): string {
  let bits = 0;
  for (; bits < 32; bits++) {
    const size = 2 ** (32 - bits);
    const net = Math.floor(v4 / size) * size;
    if (net >= start && net + size - 1 <= end) break;
  }
  const size = 2 ** (32 - bits);
  return `${formatIpv4(Math.floor(v4 / size) * size)}/${bits}`;
}

/** `words` with all bits after the first `bits` set to `fill` (0 or 1). */
function maskWords(words: ArrayLike<number>, bits: number, fill: 0 | 1): Uint32Array {
  const out = new Uint32Array(4);
  for (let k = 0; k < 4; k++) {
    const keep = Math.max(0, Math.min(32, bits - 32 * k));
    const hostMask = keep === 32 ? 0 : 0xffffffff >>> keep;
    out[k] = fill ? (words[k] | hostMask) >>> 0 : (words[k] & ~hostMask) >>> 0;
  }
  return out;
}

export function compareWords(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let k = 0; k < 4; k++) if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  return 0;
}

/** IPv6 counterpart of {@link v4NetworkWithin}. */
export function v6NetworkWithin(
  words: ArrayLike<number>,
  start: ArrayLike<number>,
  end: ArrayLike<number>,
): string {
  let bits = 0;
  for (; bits < 128; bits++) {
    if (
      compareWords(maskWords(words, bits, 0), start) >= 0 &&
      compareWords(maskWords(words, bits, 1), end) <= 0
    )
      break;
  }
  return `${formatIpv6(maskWords(words, bits, 0))}/${bits}`;
}

/** CIDR text for the network of `ip` with the given prefix length. */
export function cidr(ip: ParsedIp, bits: number): string {
  if (ip.family === 4) {
    const size = 2 ** (32 - bits);
    return `${formatIpv4(Math.floor(ip.v4 / size) * size)}/${bits}`;
  }
  return `${formatIpv6(maskWords(ip.words, bits, 0))}/${bits}`;
}
