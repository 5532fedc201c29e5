/**
 * IP addresses and CIDR blocks, v4 and v6, for the known-server allow-list of
 * vulnerable_services. Exact integer arithmetic (BigInt for v6), no string prefix tricks:
 * `10.0.0.1/8` covers 10.0.0.0–10.255.255.255, `2001:db8::/32` covers 2001:db8:… only.
 * An IPv4-mapped IPv6 address (::ffff:10.1.2.3) is the IPv4 address it carries.
 */
export interface IpAddress {
  version: 4 | 6;
  value: bigint;
}

export function parseIp(text: string): IpAddress | undefined {
  let s = text.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (s.includes(':')) {
    const v6 = parseIpv6(s);
    if (v6 === undefined) return undefined;
    if (v6 >> 32n === 0xffffn) return { version: 4, value: v6 & 0xffffffffn };
    return { version: 6, value: v6 };
  }
  const v4 = parseIpv4(s);
  return v4 === undefined ? undefined : { version: 4, value: v4 };
}

function parseIpv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseIpv6(s: string): bigint | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): bigint[] | undefined => {
    if (h === '') return [];
    const out: bigint[] = [];
    const parts = h.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (v4 === undefined) return undefined;
        out.push(v4 >> 16n, v4 & 0xffffn);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(BigInt(parseInt(p, 16)));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  let all: bigint[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    all = [...head, ...new Array<bigint>(missing).fill(0n), ...tail];
  } else {
    all = head;
  }
  if (all.length !== 8) return undefined;
  return all.reduce((acc, g) => (acc << 16n) | g, 0n);
}

export interface Cidr {
  version: 4 | 6;
  /** network address (host bits cleared) */
  network: bigint;
  prefix: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, extra] = text.trim().split('/');
  if (extra !== undefined) return undefined;
  const ip = parseIp(addr);
  if (!ip) return undefined;
  const bits = ip.version === 4 ? 32 : 128;
  let prefix = bits;
  if (len !== undefined) {
    if (!/^\d{1,3}$/.test(len)) return undefined;
    prefix = Number(len);
    // A mapped v6 prefix (::ffff:10.0.0.0/104) counts the 96 bits of the mapping.
    if (ip.version === 4 && addr.includes(':')) prefix -= 96;
    if (prefix < 0 || prefix > bits) return undefined;
  }
  const hostBits = BigInt(bits - prefix);
  return { version: ip.version, network: (ip.value >> hostBits) << hostBits, prefix };
}

export function cidrContains(c: Cidr, ip: IpAddress): boolean {
  if (c.version !== ip.version) return false;
  const hostBits = BigInt((c.version === 4 ? 32 : 128) - c.prefix);
  return ip.value >> hostBits === c.network >> hostBits;
}

/** A set of addresses and blocks; `has` answers for any textual address. */
export class AddressSet {
  readonly blocks: Cidr[];

  constructor(entries: string[]) {
    this.blocks = entries
      .map((e) => e.trim())
      .filter((e) => e !== '')
      .map((e) => {
        const c = parseCidr(e);
        if (!c) throw new Error(`not an IP address or CIDR block: ${JSON.stringify(e)}`);
        return c;
      });
  }

  has(address: string | null | undefined): boolean {
    if (!address) return false;
    const ip = parseIp(address);
    if (!ip) return false;
    return this.blocks.some((b) => cidrContains(b, ip));
  }
}
