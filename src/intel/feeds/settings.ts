/**
 * The `intel` section of talon.yaml: default lifetimes per IoC type, the allow-list, the
 * feeds `talon intel pull` fetches, and the retro-hunt look-back.
 */
import { z } from 'zod';
import { parseDuration } from '../../engine/duration.js';
import { FEED_FORMATS } from './index.js';

export const feedSchema = z
  .object({
    /** Name used by `talon intel pull NAME`, and the dataset of its IoCs. */
    name: z.string().min(1),
    url: z.string().url(),
    format: z.enum(FEED_FORMATS),
    /** Extra request headers, e.g. {Auth-Key: "${URLHAUS_KEY}"} or {X-OTX-API-KEY: …}. */
    headers: z.record(z.string(), z.string()).default({}),
    /** Minimum time between two fetches of this feed by `pull` (a 304 also counts). */
    interval: z.string().default('1h'),
    /** Declared ioc type for `text` / type-less `csv` feeds. */
    type: z.string().optional(),
    /** TAXII 2.1 collection: `url` is the API root, this the collection id (format stix). */
    taxii_collection: z.string().optional(),
  })
  .strict();

export const DEFAULT_TTL: Record<string, string> = {
  IPv4: '30d',
  IPv6: '30d',
  'IPv4-CIDR': '30d',
  'IPv6-CIDR': '30d',
  URL: '90d',
  domain: '90d',
  hostname: '90d',
  email: '180d',
};

export const INTEL_DEFAULTS = {
  ttl: DEFAULT_TTL,
  allow_list: [] as string[],
  feeds: [] as z.infer<typeof feedSchema>[],
  retrohunt_lookback: '30d',
};

export const intelSchema = z
  .object({
    /**
     * Lifetime of an IoC whose feed gives no end of validity, per ioc_type, counted from its
     * last sighting (else first_seen, else load time); `none` = forever. Types not listed
     * (hashes, CVE) never expire.
     */
    ttl: z.record(z.string(), z.string()).default(DEFAULT_TTL),
    /** Values that must never alert: IPs, CIDRs, domains (their subdomains too), URLs, hashes. */
    allow_list: z.array(z.string()).default([]),
    feeds: z.array(feedSchema).default([]),
    /** How far back `talon intel retrohunt` and the retrohunt query look for new IoCs. */
    retrohunt_lookback: z.string().default('30d'),
  })
  .strict();

export type IntelConfig = z.infer<typeof intelSchema>;
export type FeedConfig = z.infer<typeof feedSchema>;

export interface IntelSettings {
  ttlMs: Record<string, number | null>;
  allowList: string[];
  feeds: FeedConfig[];
  retrohuntLookbackMs: number;
}

/** Resolves the section (from a loaded config object that may not have it). */
export function intelSettings(config: unknown = {}): IntelSettings {
  const raw = (config as { intel?: unknown })?.intel ?? {};
  const cfg = intelSchema.parse(raw);
  const ttlMs: Record<string, number | null> = {};
  for (const [k, v] of Object.entries({ ...DEFAULT_TTL, ...cfg.ttl }))
    ttlMs[k] = /^(none|never|0)$/i.test(v.trim()) ? null : parseDuration(v);
  return {
    ttlMs,
    allowList: cfg.allow_list,
    feeds: cfg.feeds,
    retrohuntLookbackMs: parseDuration(cfg.retrohunt_lookback),
  };
}
