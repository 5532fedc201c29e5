/**
 * Enricher: GeoIP/ASN for IP fields and Public Suffix List splits for domain fields, looked up
 * once per distinct value and handed to DuckDB as a small table the ingest SQL LEFT JOINs.
 *
 * Output columns an event table gets (the seed's names):
 *   `<field>_geo`   STRUCT(country, country_code, city, latitude, longitude)
 *   `<field>_as`    STRUCT(as_number, as_org, as_network)
 *   `<field>_class` VARCHAR — public/private/loopback/… (a column of its own so the seed's
 *                   `aip_as` keeps exactly the seed's three fields)
 *   `DomainName_psl` STRUCT(registered_domain, public_suffix, subdomain)
 */
import type { TalonConfig } from '../config/config.js';
import type { Db } from '../sql/duckdb.js';
import { ident } from '../sql/duckdb.js';
import { openAsSource, openGeoSource, type AsSource, type GeoSource } from './geo-db.js';
import { classifyValue } from './ip.js';
import { splitDomain } from './psl.js';
import type { EnrichOptions, IpInfo, PslInfo } from './types.js';

export type { AsInfo, EnrichOptions, GeoInfo, IpInfo, PslInfo } from './types.js';

/**
 * Bounded memo: two generations of `max` entries; when the young one is full it becomes the
 * old one and the previous old one is dropped. Values still in use get promoted on a hit, so
 * hot keys survive without the bookkeeping of a true LRU.
 */
class TwoGenerationCache<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    let v = this.young.get(key);
    if (v !== undefined) return v;
    v = this.old.get(key);
    if (v !== undefined) this.set(key, v);
    return v;
  }
  set(key: string, value: V): void {
    if (this.young.size >= this.max) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }
  clear(): void {
    this.young.clear();
    this.old.clear();
  }
}

export const IP_TABLE_COLUMNS =
  'ip VARCHAR, ip_class VARCHAR, ' +
  'geo STRUCT(country VARCHAR, country_code VARCHAR, city VARCHAR, latitude DOUBLE, longitude DOUBLE), ' +
  'asn STRUCT(as_number BIGINT, as_org VARCHAR, as_network VARCHAR)';

export const DOMAIN_TABLE_COLUMNS =
  'domain VARCHAR, psl STRUCT(registered_domain VARCHAR, public_suffix VARCHAR, subdomain VARCHAR)';

let stagingSeq = 0;

const INVALID: IpInfo = Object.freeze({ ip_class: 'invalid', geo: null, as: null });
const NO_PSL: PslInfo = Object.freeze({ registered_domain: null, public_suffix: null, subdomain: null });

/** EnrichOptions from the `enrich` section of talon.yaml / TALON_ENRICH__* settings. */
export function enrichOptionsFromConfig(cfg: TalonConfig['enrich']): EnrichOptions {
  return { cityMmdb: cfg.city_mmdb, asnMmdb: cfg.asn_mmdb, pslPrivateDomains: cfg.psl_private_domains };
}

export class Enricher {
  private readonly ipCache: TwoGenerationCache<IpInfo>;
  private readonly domainCache: TwoGenerationCache<PslInfo>;
  private readonly pslPrivate: boolean;

  private constructor(
    private readonly geo: GeoSource,
    private readonly as: AsSource,
    opts: EnrichOptions,
  ) {
    const entries = opts.cacheEntries ?? 100_000;
    this.ipCache = new TwoGenerationCache(entries);
    this.domainCache = new TwoGenerationCache(entries);
    this.pslPrivate = opts.pslPrivateDomains ?? true;
  }

  /**
   * Opens the configured MaxMind files now (a wrong path fails here, not mid-ingest); the
   * bundled databases load lazily, per address family, on first use.
   */
  static async open(opts: EnrichOptions = {}): Promise<Enricher> {
    return new Enricher(openGeoSource(opts.cityMmdb), openAsSource(opts.asnMmdb), opts);
  }

  /**
   * Classifies a field value (one address, or Falcon's space-separated list) and looks up
   * public ones. The result is frozen and may be shared with other callers.
   */
  lookupIp(ip: string): IpInfo {
    if (typeof ip !== 'string') return INVALID; // a NULL column value reaching here from JS
    const cached = this.ipCache.get(ip);
    if (cached) return cached;
    const c = classifyValue(ip);
    let info: IpInfo;
    if (c.address === null) info = { ip_class: c.ip_class, geo: null, as: null };
    else {
      const as = this.as.lookup(c.address);
      info = { ip_class: c.ip_class, geo: this.geo.lookup(c.address), as: as && Object.freeze(as) };
    }
    // Cached and handed to every caller: read-only.
    Object.freeze(info);
    this.ipCache.set(ip, info);
    return info;
  }

  lookupDomain(domain: string): PslInfo {
    if (typeof domain !== 'string') return NO_PSL;
    const cached = this.domainCache.get(domain);
    if (cached) return cached;
    const info = Object.freeze(splitDomain(domain, this.pslPrivate));
    this.domainCache.set(domain, info);
    return info;
  }

  /**
   * Creates or replaces temp table `name` (ip, ip_class, geo, asn) with one row per distinct
   * non-null value of `ips`, each looked up once.
   *
   * Loading: rows go through DuckDB's appender into a flat staging table (scalar appends are
   * native calls; a STRUCT append builds a DuckDB value object per row and is several times
   * slower), then one INSERT … SELECT packs the structs.
   */
  async ipTable(db: Db, name: string, ips: Iterable<string>): Promise<void> {
    const staging = `__talon_enrich_ip_${process.pid}_${stagingSeq++}`;
    await db.run(
      `CREATE OR REPLACE TEMP TABLE ${ident(name)} (${IP_TABLE_COLUMNS});
       CREATE TEMP TABLE ${ident(staging)} (ip VARCHAR, ip_class VARCHAR, has_geo BOOLEAN,
         country VARCHAR, country_code VARCHAR, city VARCHAR, latitude DOUBLE, longitude DOUBLE,
         has_as BOOLEAN, as_number BIGINT, as_org VARCHAR, as_network VARCHAR)`,
    );
    try {
      const appender = await db.connection.createAppender(staging, 'main', 'temp');
      try {
        const seen = new Set<string>();
        for (const ip of ips) {
          if (ip === null || ip === undefined || seen.has(ip)) continue;
          seen.add(ip);
          const info = this.lookupIp(ip);
          appender.appendVarchar(ip);
          appender.appendVarchar(info.ip_class);
          const g = info.geo;
          appender.appendBoolean(g !== null);
          appendText(appender, g?.country);
          appendText(appender, g?.country_code);
          appendText(appender, g?.city);
          appendDouble(appender, g?.latitude);
          appendDouble(appender, g?.longitude);
          const a = info.as;
          appender.appendBoolean(a !== null);
          if (a?.as_number == null) appender.appendNull();
          else appender.appendBigInt(BigInt(a.as_number));
          appendText(appender, a?.as_org);
          appendText(appender, a?.as_network);
          appender.endRow();
        }
        appender.flushSync();
      } finally {
        appender.closeSync();
      }
      await db.run(
        `INSERT INTO ${ident(name)}
         SELECT ip, ip_class,
           CASE WHEN has_geo THEN struct_pack(country, country_code, city, latitude, longitude) END,
           CASE WHEN has_as THEN struct_pack(as_number, as_org, as_network) END
         FROM ${ident(staging)}`,
      );
    } finally {
      await db.run(`DROP TABLE IF EXISTS temp.main.${ident(staging)}`);
    }
  }

  /** Creates or replaces temp table `name` (domain, psl) with one row per distinct non-null value. */
  async domainTable(db: Db, name: string, domains: Iterable<string>): Promise<void> {
    await db.run(`CREATE OR REPLACE TEMP TABLE ${ident(name)} (${DOMAIN_TABLE_COLUMNS})`);
    const staging = `__talon_enrich_dom_${process.pid}_${stagingSeq++}`;
    await db.run(
      `CREATE TEMP TABLE ${ident(staging)} (domain VARCHAR, has_psl BOOLEAN,
         registered_domain VARCHAR, public_suffix VARCHAR, subdomain VARCHAR)`,
    );
    try {
      const appender = await db.connection.createAppender(staging, 'main', 'temp');
      try {
        const seen = new Set<string>();
        for (const d of domains) {
          if (d === null || d === undefined || seen.has(d)) continue;
          seen.add(d);
          const p = this.lookupDomain(d);
          appender.appendVarchar(d);
          appender.appendBoolean(p.public_suffix !== null);
          appendText(appender, p.registered_domain);
          appendText(appender, p.public_suffix);
          appendText(appender, p.subdomain);
          appender.endRow();
        }
        appender.flushSync();
      } finally {
        appender.closeSync();
      }
      await db.run(
        `INSERT INTO ${ident(name)}
         SELECT domain, CASE WHEN has_psl THEN struct_pack(registered_domain, public_suffix, subdomain) END
         FROM ${ident(staging)}`,
      );
    } finally {
      await db.run(`DROP TABLE IF EXISTS temp.main.${ident(staging)}`);
    }
  }

  /**
   * Drops the memoised lookups. Configured MaxMind files go with the object; the bundled
   * databases stay loaded for the process (shared by all Enrichers).
   */
  close(): void {
    this.ipCache.clear();
    this.domainCache.clear();
  }
}

interface ScalarAppender {
  appendVarchar(v: string): void;
  appendDouble(v: number): void;
  appendNull(): void;
}

function appendText(a: ScalarAppender, v: string | null | undefined): void {
  if (v == null) a.appendNull();
  else a.appendVarchar(v);
}

function appendDouble(a: ScalarAppender, v: number | null | undefined): void {
  if (v == null) a.appendNull();
  else a.appendDouble(v);
}
