/**
 * The allow-list (config `intel.allow_list`): values that must never alert — 8.8.8.8 in a
 * feed must not page anyone. IoCs matching it stay in `iocs` and `ioc_sources` with
 * `allow_listed = true` (ioc_match and the retro-hunt skip those rows), so the list can be
 * edited and the next load or pull flips the flag both ways (reconcileAllowList).
 *
 * Entries: IPs and CIDRs (an IoC inside the range matches; a CIDR IoC when the whole network
 * lies inside), DNS names (the name and its subdomains, for domain/hostname IoCs, URL hosts
 * and e-mail domains), anything else exactly (URLs canonicalized, hashes lower-case).
 *
 * Deciding rows in bulk: `candidateSql` is a cheap SQL over-approximation (prefix and
 * substring tests DuckDB runs vectorized), and `matches` decides each candidate exactly.
 * A million-row table with a ten-entry list yields a handful of candidates.
 */
import type { Db } from '../sql/duckdb.js';
import { literal } from '../sql/duckdb.js';
import { canonicalHost, ipv4InCidr, ipv6InCidr, normalizeIoc } from './normalize.js';

/** A compiled allow-list: IPs/CIDRs by range, names by suffix, anything else exactly. */
export class AllowList {
  private readonly v4: string[] = [];
  private readonly v6: string[] = [];
  private readonly names = new Set<string>();
  private readonly exact = new Set<string>();

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const ip = normalizeIoc('IP', e);
      if (ip.ok) {
        if (ip.ioc_type === 'IPv4') this.v4.push(`${ip.ioc}/32`);
        else if (ip.ioc_type === 'IPv6') this.v6.push(`${ip.ioc}/128`);
        else if (ip.ioc_type === 'IPv4-CIDR') this.v4.push(ip.ioc);
        else this.v6.push(ip.ioc);
        continue;
      }
      const host = canonicalHost(e);
      if (host && !e.includes('/')) {
        this.names.add(host);
        continue;
      }
      const u = normalizeIoc('URL', e);
      this.exact.add(u.ok ? u.ioc : e.trim().toLowerCase());
    }
  }

  get size(): number {
    return this.v4.length + this.v6.length + this.names.size + this.exact.size;
  }

  private ip(v: string, v6: boolean): boolean {
    return v6 ? this.v6.some((c) => ipv6InCidr(v, c)) : this.v4.some((c) => ipv4InCidr(v, c));
  }

  private name(h: string): boolean {
    // The name itself or any parent domain (allow-listing example.com covers www.example.com).
    for (let s = h; ;) {
      if (this.names.has(s)) return true;
      const i = s.indexOf('.');
      if (i < 0) return false;
      s = s.slice(i + 1);
    }
  }

  private host(h: string): boolean {
    const bare = h.replace(/^\[|\]$/g, '');
    if (/^[\d.]+$/.test(bare)) return this.ip(bare, false);
    if (bare.includes(':')) return this.ip(bare, true);
    return this.name(bare);
  }

  matches(r: { ioc_type: string; ioc: string }): boolean {
    if (this.size === 0) return false;
    if (this.exact.has(r.ioc) || this.exact.has(r.ioc.toLowerCase())) return true;
    switch (r.ioc_type) {
      case 'IPv4':
        return this.ip(r.ioc, false);
      case 'IPv6':
        return this.ip(r.ioc, true);
      case 'IPv4-CIDR':
      case 'IPv6-CIDR': {
        // Allow-listed when the whole network lies inside an allow-listed one.
        const [net, p] = r.ioc.split('/');
        const v6 = r.ioc_type === 'IPv6-CIDR';
        return (v6 ? this.v6 : this.v4).some(
          (c) => Number(c.split('/')[1]) <= Number(p) && (v6 ? ipv6InCidr(net, c) : ipv4InCidr(net, c)),
        );
      }
      case 'domain':
      case 'hostname':
        return this.name(r.ioc);
      case 'URL':
        try {
          return this.host(new URL(r.ioc).hostname);
        } catch {
          return false;
        }
      case 'email':
        return this.name(r.ioc.slice(r.ioc.lastIndexOf('@') + 1));
      default:
        return false;
    }
  }

  /**
   * A SQL predicate over columns `ioc_type` and `ioc` true for every row `matches` accepts
   * (and some it does not): false for an empty list.
   */
  candidateSql(): string {
    const or: string[] = [];
    const urlHostDigit = `(ioc_type = 'URL' AND regexp_matches(ioc, '^[^:/]+://([^/@]*@)?\\d'))`;
    for (const c of this.v4) {
      // Addresses inside a /p share its first ⌊p/8⌋ octets as a text prefix.
      const [net, p] = c.split('/');
      const octets = Math.floor(Number(p) / 8);
      const prefix = octets === 0 ? '' : net.split('.').slice(0, octets).join('.') + (octets < 4 ? '.' : '');
      or.push(
        `(ioc_type IN ('IPv4', 'IPv4-CIDR') AND starts_with(ioc, ${literal(prefix)}))`,
        `(${urlHostDigit} AND contains(ioc, ${literal(prefix)}))`,
      );
    }
    if (this.v6.length > 0)
      or.push(`ioc_type IN ('IPv6', 'IPv6-CIDR')`, `(ioc_type = 'URL' AND contains(ioc, '['))`);
    for (const n of this.names)
      or.push(`(ioc_type IN ('domain', 'hostname', 'URL', 'email') AND contains(ioc, ${literal(n)}))`);
    if (this.exact.size > 0) {
      const list = [...this.exact].map(literal).join(', ');
      or.push(`ioc IN (${list})`, `lower(ioc) IN (${list})`);
    }
    return or.length > 0 ? `(${or.join(' OR ')})` : 'false';
  }
}

/**
 * The keys of `relation` (columns ioc_type, ioc, and the current flag as `flagSql`) whose
 * allow-list flag is wrong under `allow`: `set` should become true, `clear` false.
 */
export async function allowListChanges(
  db: Db,
  relation: string,
  allow: AllowList,
  flagSql = 'allow_listed',
): Promise<{ set: { ioc_type: string; ioc: string }[]; clear: { ioc_type: string; ioc: string }[] }> {
  const rows = await db.all<{ ioc_type: string; ioc: string; flag: boolean }>(
    `SELECT DISTINCT ioc_type, ioc, coalesce(${flagSql}, false) AS flag FROM (${relation})
      WHERE coalesce(${flagSql}, false) OR ${allow.candidateSql()}`,
  );
  const set: { ioc_type: string; ioc: string }[] = [];
  const clear: { ioc_type: string; ioc: string }[] = [];
  for (const r of rows) {
    const want = allow.matches(r);
    if (want && !r.flag) set.push({ ioc_type: r.ioc_type, ioc: r.ioc });
    else if (!want && r.flag) clear.push({ ioc_type: r.ioc_type, ioc: r.ioc });
  }
  return { set, clear };
}
