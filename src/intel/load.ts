/**
 * Loading a feed: parse → canonical records (normalize.ts) → lifecycle and allow-list →
 * MERGE into `iocs` (one row per (ioc_type, ioc), what ioc_match joins) and into
 * `ioc_sources` (one row per (dataset, ioc_type, ioc): every feed's own view of the IoC —
 * ioc_id, confidence, tags, description, reference, its end of validity, allow_listed).
 *
 * Lifecycle: the `iocs.last_seen` column is the end of the IoC's matching window (ioc_match
 * joins events with time in [first_seen, coalesce(last_seen, now)]). It is the feed's
 * valid_until / expiration when given, else the type's TTL (config `intel.ttl`) counted from
 * the feed's last sighting (else first_seen, else the load time), else NULL (never expires:
 * hashes). An expired IoC therefore stops matching new events, while a feed that reports it
 * again extends it (MERGE keeps the latest last_seen).
 *
 * Allow-list (config `intel.allow_list`): an IoC matching it is kept in `ioc_sources` with
 * allow_listed = true and is not written to `iocs`, so it can never alert.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Lake } from '../lake/lake.js';
import { literal } from '../sql/duckdb.js';
import { mergeIocs } from './iocs.js';
import { canonicalHost, ipv4InCidr, ipv6InCidr, normalizeIoc } from './normalize.js';
import { parseFeed } from './feeds/index.js';
import type { FeedFormat, IocRecord } from './feeds/index.js';
import { countOf } from './feeds/record.js';
import type { FeedParse } from './feeds/record.js';
import type { IntelSettings } from './feeds/settings.js';
import { intelSettings } from './feeds/settings.js';

export const IOC_SOURCES_TABLE = 'ioc_sources';

export interface LoadOptions {
  dataset?: string;
  /** Declared type for text / type-less CSV. */
  type?: string;
  settings?: IntelSettings;
  /** The load time (tests); default now. */
  now?: Date;
  /** Idempotence key; default: sha256 of format, dataset and content. */
  loadId?: string;
}

export interface LoadReport {
  format: string;
  dataset: string;
  /** Records the feed yielded after normalization (before de-duplication). */
  parsed: number;
  /** Distinct (ioc_type, ioc) written to iocs. */
  stored: number;
  allowListed: number;
  /** ioc_type → distinct IoCs stored */
  types: Record<string, number>;
  rejected: Record<string, number>;
  unsupported: Record<string, number>;
  skipped: Record<string, number>;
  iocsVersion: number | null;
  /** The same content was loaded before (txn): nothing was written. */
  alreadyLoaded: boolean;
}

/** A compiled allow-list: IPs/CIDRs by range, names by suffix, anything else exactly. */
export class AllowList {
  private readonly v4: string[] = [];
  private readonly v6: string[] = [];
  private readonly names = new Set<string>();
  private readonly exact = new Set<string>();

  constructor(entries: string[]) {
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
}

/** End of an IoC's matching window (see the module comment). */
export function validityEnd(r: IocRecord, ttlMs: Record<string, number | null>, now: Date): Date | null {
  if (r.valid_until) return r.valid_until;
  const ttl = ttlMs[r.ioc_type];
  if (ttl === null || ttl === undefined) return null;
  const base = r.last_seen ?? r.first_seen ?? now;
  return new Date(base.getTime() + ttl);
}

/** Loads a parsed feed into the lake. */
export async function loadIocRecords(
  lake: Lake,
  parsed: FeedParse,
  opts: LoadOptions & { format: string; loadId: string },
): Promise<LoadReport> {
  const settings = opts.settings ?? intelSettings();
  const now = opts.now ?? new Date();
  const allow = new AllowList(settings.allowList);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-intel-'));
  const file = path.join(dir, 'iocs.ndjson');
  const lines: string[] = [];
  // Hand-built NDJSON lines (JSON.stringify per string value): 3-4× cheaper than stringifying
  // an object per record, which dominated large loads.
  const isoCache = new Map<number, string>();
  const ts = (d: Date | null | undefined): string => {
    if (!d) return 'null';
    const k = d.getTime();
    let v = isoCache.get(k);
    if (v === undefined) {
      v = `"${d.toISOString()}"`;
      if (isoCache.size < 100_000) isoCache.set(k, v);
    }
    return v;
  };
  const s = (v: string | null | undefined): string =>
    v === null || v === undefined ? 'null' : JSON.stringify(v);
  for (const r of parsed.records) {
    lines.push(
      `{"dataset":${s(r.dataset)},"ioc":${s(r.ioc)},"ioc_type":${s(r.ioc_type)},"ioc_id":${s(r.ioc_id)},` +
        `"first_seen":${ts(r.first_seen ?? now)},"last_seen":${ts(r.last_seen)},` +
        `"valid_until":${ts(validityEnd(r, settings.ttlMs, now))},"confidence":${r.confidence ?? 'null'},` +
        `"tags":${r.tags ? JSON.stringify(r.tags) : '[]'},"description":${s(r.description)},` +
        `"reference":${s(r.reference)},"allow_listed":${allow.matches(r)}}`,
    );
  }
  const db = lake.db;
  const tmp = `__talon_intel_${process.pid}_${Date.now()}`;
  const report: LoadReport = {
    format: opts.format,
    dataset: opts.dataset ?? opts.format,
    parsed: parsed.records.length,
    stored: 0,
    allowListed: 0,
    types: {},
    rejected: parsed.rejected,
    unsupported: parsed.unsupported,
    skipped: parsed.skipped,
    iocsVersion: null,
    alreadyLoaded: false,
  };
  try {
    await writeFile(file, lines.join('\n') + '\n');
    await db.run(`CREATE OR REPLACE TEMP TABLE ${tmp} AS
      SELECT * FROM read_json(${literal(file)}, format = 'newline_delimited', columns = {
        dataset: 'VARCHAR', ioc: 'VARCHAR', ioc_type: 'VARCHAR', ioc_id: 'VARCHAR',
        first_seen: 'TIMESTAMP', last_seen: 'TIMESTAMP', valid_until: 'TIMESTAMP',
        confidence: 'DOUBLE', tags: 'VARCHAR[]', description: 'VARCHAR', reference: 'VARCHAR',
        allow_listed: 'BOOLEAN'})`);
    // One row per (ioc_type, ioc) across the feed: earliest first_seen, latest end of validity
    // (NULL = never expires wins), the earliest sighting's dataset/id/description.
    const iocsRel = `SELECT arg_min(dataset, first_seen) AS dataset, ioc,
        ioc_type, arg_min(ioc_id, first_seen) AS ioc_id, min(first_seen) AS first_seen,
        CASE WHEN bool_or(valid_until IS NULL) THEN NULL ELSE max(valid_until) END AS last_seen,
        arg_min(description, first_seen) AS description
      FROM ${tmp} WHERE NOT allow_listed GROUP BY ioc_type, ioc`;
    const counts = await db.all<{ ioc_type: string; n: bigint }>(
      `SELECT ioc_type, count(*) AS n FROM (${iocsRel}) GROUP BY ioc_type ORDER BY ioc_type`,
    );
    for (const c of counts) report.types[c.ioc_type] = Number(c.n);
    report.stored = Object.values(report.types).reduce((a, b) => a + b, 0);
    const al = await db.all<{ n: bigint }>(
      `SELECT count(DISTINCT (ioc_type, ioc)) AS n FROM ${tmp} WHERE allow_listed`,
    );
    report.allowListed = Number(al[0].n);
    if (report.stored > 0) {
      const res = await mergeIocs(lake, iocsRel, opts.loadId);
      report.iocsVersion = res.version;
      report.alreadyLoaded = res.skipped;
    }
    if (lines.length > 0) {
      const sourcesRel = `SELECT dataset, ioc_type, ioc, arg_min(ioc_id, first_seen) AS ioc_id,
          min(first_seen) AS first_seen, max(last_seen) AS last_seen,
          CASE WHEN bool_or(valid_until IS NULL) THEN NULL ELSE max(valid_until) END AS valid_until,
          max(confidence) AS confidence, list_distinct(flatten(list(tags))) AS tags,
          arg_min(description, first_seen) AS description, arg_min(reference, first_seen) AS reference,
          bool_or(allow_listed) AS allow_listed, TIMESTAMP ${literal(now.toISOString().replace('T', ' ').replace('Z', ''))} AS loaded_at
        FROM ${tmp} GROUP BY dataset, ioc_type, ioc`;
      const existing = await lake.table(IOC_SOURCES_TABLE);
      const snap = existing ? await existing.snapshot() : undefined;
      const txn = { txn: { appId: `intel-sources:${opts.loadId}`, version: 0 } };
      if (!existing || !snap || snap.schema.fields.length === 0) {
        const t =
          existing ??
          (await lake.createTable(IOC_SOURCES_TABLE, {
            description: 'Threat-intel IoCs per feed (dataset): validity, confidence, tags, allow-list flag',
          }));
        const r = await t.append(sourcesRel, txn);
        if (report.stored === 0) report.alreadyLoaded = r.skipped;
      } else {
        const r = await existing.merge(
          sourcesRel,
          { on: ['dataset', 'ioc_type', 'ioc'], whenMatched: 'update', whenNotMatched: 'insert' },
          txn,
        );
        if (report.stored === 0) report.alreadyLoaded = r.skipped;
      }
    }
  } finally {
    await db.run(`DROP TABLE IF EXISTS ${tmp}`);
    await rm(dir, { recursive: true, force: true });
  }
  return report;
}

/** `talon intel load FILE --format F`: parse, normalize, MERGE. */
export async function loadIocText(
  lake: Lake,
  text: string,
  format: FeedFormat,
  opts: LoadOptions = {},
): Promise<LoadReport> {
  const dataset = opts.dataset ?? format;
  const parsed = parseFeed(format, text, { dataset, type: opts.type });
  const loadId =
    opts.loadId ??
    createHash('sha256')
      .update(`${format}\0${dataset}\0${opts.type ?? ''}\0`)
      .update(text)
      .digest('hex')
      .slice(0, 32);
  return loadIocRecords(lake, parsed, { ...opts, dataset, format, loadId });
}

export async function loadIocFile(
  lake: Lake,
  file: string,
  format: FeedFormat,
  opts: LoadOptions = {},
): Promise<LoadReport> {
  return loadIocText(lake, await readFile(file, 'utf8'), format, opts);
}

/** One line per load for the CLI. */
export function formatLoadReport(r: LoadReport, source: string): string {
  const types = Object.entries(r.types)
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
  const parts = [
    `${source}: ${r.stored} IoC(s) stored${types ? ` (${types})` : ''}`,
    r.allowListed ? `${r.allowListed} allow-listed` : '',
    countOf(r.rejected) ? `${countOf(r.rejected)} rejected (${fmt(r.rejected)})` : '',
    countOf(r.unsupported) ? `${countOf(r.unsupported)} unsupported (${fmt(r.unsupported)})` : '',
    countOf(r.skipped) ? `${countOf(r.skipped)} skipped (${fmt(r.skipped)})` : '',
    r.alreadyLoaded ? 'already loaded' : r.iocsVersion !== null ? `iocs version ${r.iocsVersion}` : '',
  ];
  return parts.filter(Boolean).join('; ');
}

function fmt(m: Record<string, number>): string {
  return Object.entries(m)
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ');
}
