/** The enrichment values Talon adds to events: the seed's `aip_geo`, `aip_as`, `DomainName_psl`. */

export interface EnrichOptions {
  /** MaxMind GeoIP2/GeoLite2 City (or any City-layout .mmdb); default: bundled DB-IP City Lite. */
  cityMmdb?: string;
  /** MaxMind GeoLite2 ASN / GeoIP2 ISP .mmdb; default: bundled @ip-location-db/asn. */
  asnMmdb?: string;
  /**
   * Whether the PSL's private section (github.io, blogspot.com, s3.amazonaws.com, duckdns.org…)
   * counts as public suffixes; default true. See psl.ts for why.
   */
  pslPrivateDomains?: boolean;
  /** Memoised lookups kept per kind (IPs, domains), in two generations; default 100,000. */
  cacheEntries?: number;
}

export interface GeoInfo {
  country: string | null;
  country_code: string | null;
  city: string | null;
  latitude: number | null;
  longitude: number | null;
}

export interface AsInfo {
  as_number: number | null;
  as_org: string | null;
  /** The network (CIDR text) the database answered for, e.g. `8.8.8.0/24`. */
  as_network: string | null;
}

export interface IpInfo {
  /** 'public','private','loopback','link_local','cgnat','multicast','reserved','documentation','invalid'. */
  ip_class: string;
  /** Null unless the address is public and the database knows it. */
  geo: GeoInfo | null;
  /** Null unless the address is public and the database knows it. */
  as: AsInfo | null;
}

export interface PslInfo {
  registered_domain: string | null;
  public_suffix: string | null;
  subdomain: string | null;
}
