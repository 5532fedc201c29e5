/**
 * `DomainName_psl`: a DNS name split at its public suffix with the Public Suffix List (tldts).
 *
 * Private suffixes policy: by default the PSL's private section counts (github.io,
 * blogspot.com, s3.amazonaws.com, duckdns.org, ngrok.io, …). Those suffixes are handed out to
 * unrelated customers, so `evil.duckdns.org` and `good.duckdns.org` belong to different
 * people; with the private section `registered_domain` is the unit someone actually controls,
 * which is what a domain IoC names and what "first time this registered domain was seen"
 * should count. `enrich.psl_private_domains: false` gives the ICANN-only split instead.
 */
import { parse } from 'tldts';
import type { PslInfo } from './types.js';

const EMPTY: PslInfo = Object.freeze({ registered_domain: null, public_suffix: null, subdomain: null });

/**
 * Splits a DNS name. Case and one trailing root dot are ignored; IP literals, empty and
 * malformed names (empty labels, bad characters) give all-null. A name with no known suffix
 * follows the PSL's default rule (the last label is the suffix), so `corp.local` registers
 * under `local` and a bare `WORKSTATION1` is only a suffix.
 */
export function splitDomain(name: string, privateDomains = true): PslInfo {
  let host = name.trim().toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '') return EMPTY;
  const r = parse(host, { allowPrivateDomains: privateDomains });
  if (r.isIp || r.hostname === null || !r.publicSuffix) return EMPTY;
  return {
    registered_domain: r.domain || null,
    public_suffix: r.publicSuffix,
    subdomain: r.subdomain || null,
  };
}
