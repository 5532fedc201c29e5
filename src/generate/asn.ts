/**
 * Public IPv4 addresses for generated hosts, picked from the bundled ASN database
 * (`@ip-location-db/asn` asn-ipv4.csv: ip_range_start, ip_range_end, as_number, as_org — no header).
 *
 * The `new_logon_location` detection groups logons by `aip_as.as_org`, so the generator has to know
 * the organisation the enrichment will find for every `aip` it writes. Picking each address inside a
 * row of that very file and taking the row's `as_org` makes the ground truth agree with enrichment.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Rng } from './prng.js';

export interface AsnRange {
  start: number;
  end: number;
  asNumber: number;
  asOrg: string;
}

/** A public address and what the ASN database says about it. */
export interface PublicAddress {
  ip: string;
  asNumber: number;
  asOrg: string;
}

export function ipv4ToInt(ip: string): number {
  const p = ip.split('.');
  if (p.length !== 4) return -1;
  let v = 0;
  for (const part of p) {
    if (!/^\d{1,3}$/.test(part)) return -1;
    const n = Number(part);
    if (n > 255) return -1;
    v = v * 256 + n;
  }
  return v;
}

export function intToIpv4(v: number): string {
  return `${Math.floor(v / 16777216) % 256}.${Math.floor(v / 65536) % 256}.${Math.floor(v / 256) % 256}.${v % 256}`;
}

/** Whether `ip` equals an entry of `list` or lies in one of its IPv4 CIDRs. */
export function ipInList(ip: string, list: readonly string[]): boolean {
  const v = ipv4ToInt(ip);
  for (const entry of list) {
    const slash = entry.indexOf('/');
    if (slash < 0) {
      if (entry === ip) return true;
      continue;
    }
    const base = ipv4ToInt(entry.slice(0, slash));
    const bits = Number(entry.slice(slash + 1));
    if (v < 0 || base < 0 || !(bits >= 0 && bits <= 32)) continue;
    const size = 2 ** (32 - bits);
    const net = Math.floor(base / size) * size;
    if (v >= net && v < net + size) return true;
  }
  return false;
}

/** Finds the package folder of @ip-location-db/asn by walking up from this module. */
export function defaultAsnCsvPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'node_modules', '@ip-location-db', 'asn', 'asn-ipv4.csv');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error('generate: @ip-location-db/asn/asn-ipv4.csv not found (npm install?)');
    dir = parent;
  }
}

/** The database's package version, recorded in ground-truth.json. */
export function asnDatabaseVersion(csvPath: string): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(path.dirname(csvPath), 'package.json'), 'utf8')) as {
      name?: string;
      version?: string;
    };
    return `${pkg.name ?? 'asn'}@${pkg.version ?? '?'}/${path.basename(csvPath)}`;
  } catch {
    return path.basename(csvPath);
  }
}

/** Splits one CSV row (RFC 4180 quoting: "a, b" and "" for a quote). */
export function splitCsvRow(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= line.length) break;
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            v += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += line[i++];
      }
      out.push(v);
      if (line[i] === ',') i++;
      else break;
    } else {
      const comma = line.indexOf(',', i);
      if (comma < 0) {
        out.push(line.slice(i));
        break;
      }
      out.push(line.slice(i, comma));
      i = comma + 1;
    }
  }
  return out;
}

const rangeCache = new Map<string, Promise<Map<number, AsnRange[]>>>();

/** Reads the rows of the wanted AS numbers, in file order (cached per file and AS set). */
export function loadAsnRanges(
  csvPath: string,
  wanted: ReadonlySet<number>,
): Promise<Map<number, AsnRange[]>> {
  const key = `${csvPath}\u0000${[...wanted].sort((a, b) => a - b).join(',')}`;
  let p = rangeCache.get(key);
  if (!p) {
    p = readAsnRanges(csvPath, wanted);
    rangeCache.set(key, p);
    p.catch(() => rangeCache.delete(key));
  }
  return p;
}

async function readAsnRanges(csvPath: string, wanted: ReadonlySet<number>): Promise<Map<number, AsnRange[]>> {
  const byAsn = new Map<number, AsnRange[]>();
  const rl = createInterface({ input: createReadStream(csvPath, 'utf8'), crlfDelay: Infinity });
  for await (const line of rl) {
    // Cheap pre-filter: the AS number is the third field; skip rows whose number we do not want.
    const c1 = line.indexOf(',');
    const c2 = line.indexOf(',', c1 + 1);
    const c3 = line.indexOf(',', c2 + 1);
    if (c1 < 0 || c2 < 0 || c3 < 0) continue;
    const asNumber = Number(line.slice(c2 + 1, c3));
    if (!wanted.has(asNumber)) continue;
    const [startIp, endIp, , org] = splitCsvRow(line);
    const start = ipv4ToInt(startIp);
    const end = ipv4ToInt(endIp);
    if (start < 0 || end < start || !org) continue;
    let list = byAsn.get(asNumber);
    if (!list) byAsn.set(asNumber, (list = []));
    list.push({ start, end, asNumber, asOrg: org });
  }
  return byAsn;
}

/**
 * Picks a host address inside one of `ranges`: never the first or last address of a /24, so it
 * looks like a host, not a network or broadcast address.
 */
export function pickAddress(
  rng: Rng,
  ranges: readonly AsnRange[],
  avoid: ReadonlySet<string>,
): PublicAddress {
  for (let attempt = 0; attempt < 64; attempt++) {
    const r = rng.pick(ranges);
    const span = r.end - r.start + 1;
    if (span < 4) continue;
    const v = r.start + rng.int(1, Math.min(span - 2, 65534));
    const last = v % 256;
    if (last === 0 || last === 255) continue;
    const ip = intToIpv4(v);
    if (avoid.has(ip)) continue;
    return { ip, asNumber: r.asNumber, asOrg: r.asOrg };
  }
  throw new Error('generate: could not pick a public address from the ASN database');
}
