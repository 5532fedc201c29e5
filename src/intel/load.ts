/**
 * Loading a feed: parse → canonical records (normalize.ts) → lifecycle and allow-list →
 * `iocs` (one row per (ioc_type, ioc), what ioc_match joins) and `ioc_sources` (one row per
 * (dataset, ioc_type, ioc): every feed's own view of the IoC — ioc_id, confidence, tags,
 * description, reference, its end of validity, allow_listed).
 *
 * Lifecycle: the `iocs.last_seen` column is the end of the IoC's matching window (ioc_match
 * joins events with time in [first_seen, coalesce(last_seen, now)]). It is the feed's
 * valid_until / expiration when given, else the type's TTL (config `intel.ttl`) counted from
 * the feed's last sighting (else first_seen, else the load time), else NULL (never expires:
 * hashes). An expired IoC therefore stops matching new events, while a feed that reports it
 * again extends it (the latest last_seen wins; see iocs.ts for the other columns).
 *
 * Allow-list (config `intel.allow_list`, allowlist.ts): an IoC matching it is stored in both
 * tables with allow_listed = true, and ioc_match / the retro-hunt skip it. Every load (and
 * every pull) also reconciles the rows already stored with the configured list, so adding or
 * removing an entry flips the flag of earlier IoCs both ways.
 *
 * Cost: records travel to DuckDB column by column (columns.ts); a feed without duplicate keys
 * (one count tells) skips the GROUP BY; only new or changed rows are written (upsert.ts). A feed loaded twice is skipped by its txn (content hash).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Lake } from '../lake/lake.js';
import { AllowList, allowListChanges } from './allowlist.js';
import { createTempTable } from './columns.js';
import type { Column, ColumnValue } from './columns.js';
import { IOCS_TABLE, upsertIocs } from './iocs.js';
import { IOC_SOURCES_TABLE, iocSourcesSpec } from './sources.js';
import { timestampSql, upsertRows } from './upsert.js';
import { parseFeed } from './feeds/index.js';
import type { FeedFormat, IocRecord } from './feeds/index.js';
import { countOf, FeedCollector } from './feeds/record.js';
import type { FeedParse } from './feeds/record.js';
import type { IntelSettings } from './feeds/settings.js';
import { intelSettings } from './feeds/settings.js';

export { AllowList } from './allowlist.js';
export { IOC_SOURCES_TABLE } from './sources.js';

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
  /** Distinct (ioc_type, ioc) in the feed, written to iocs (allow-listed ones included). */
  stored: number;
  /** Of those, how many match the allow-list. */
  allowListed: number;
  /** ioc_type → distinct IoCs stored */
  types: Record<string, number>;
  rejected: Record<string, number>;
  unsupported: Record<string, number>;
  skipped: Record<string, number>;
  /** iocs rows added / changed by this load (0 when everything was known already). */
  inserted: number;
  updated: number;
  /** Earlier rows (iocs + ioc_sources) whose allow_listed flag flipped: the allow-list changed. */
  reconciled: number;
  iocsVersion: number | null;
  /** The same content was loaded before (txn): nothing was written. */
  alreadyLoaded: boolean;
}

/** End of an IoC's matching window (see the module comment). */
export function validityEnd(r: IocRecord, ttlMs: Record<string, number | null>, now: Date): Date | null {
  const ms = validityEndMs(r, ttlMs, now.getTime());
  return ms === null ? null : new Date(ms);
}

function validityEndMs(
  r: Pick<IocRecord, 'valid_until' | 'ioc_type' | 'last_seen' | 'first_seen'>,
  ttlMs: Record<string, number | null>,
  nowMs: number,
): number | null {
  if (r.valid_until) return r.valid_until.getTime();
  const ttl = ttlMs[r.ioc_type];
  if (ttl === null || ttl === undefined) return null;
  const base = r.last_seen ?? r.first_seen;
  return (base ? base.getTime() : nowMs) + ttl;
}

type OptionalField = Exclude<keyof IocRecord, 'ioc' | 'ioc_type'>;

/** Column access to parsed records (the collector keeps columns; anything else has objects). */
interface RecordColumns {
  size: number;
  ioc(i: number): string;
  iocType(i: number): string;
  field<K extends OptionalField>(name: K, i: number): IocRecord[K];
  /** false: no record sets the field (it has its default everywhere). */
  has?(name: OptionalField): boolean;
}

function columnsOf(parsed: FeedParse): RecordColumns {
  if (parsed instanceof FeedCollector) return parsed;
  const rs = parsed.records;
  return {
    size: rs.length,
    ioc: (i) => rs[i].ioc,
    iocType: (i) => rs[i].ioc_type,
    field: (name, i) => rs[i][name],
  };
}

let loadSeq = 0;

/** Loads a parsed feed into the lake. */
export async function loadIocRecords(
  lake: Lake,
  parsed: FeedParse,
  opts: LoadOptions & { format: string; loadId: string },
): Promise<LoadReport> {
  const settings = opts.settings ?? intelSettings();
  const now = opts.now ?? new Date();
  const nowMs = now.getTime();
  const allow = new AllowList(settings.allowList);
  const rc = columnsOf(parsed);
  const n = rc.size;
  const report: LoadReport = {
    format: opts.format,
    dataset: opts.dataset ?? opts.format,
    parsed: n,
    stored: 0,
    allowListed: 0,
    types: {},
    rejected: parsed.rejected,
    unsupported: parsed.unsupported,
    skipped: parsed.skipped,
    inserted: 0,
    updated: 0,
    reconciled: 0,
    iocsVersion: null,
    alreadyLoaded: false,
  };

  // The allow-list flag of each record (only when there is a list to match).
  const flags =
    allow.size > 0
      ? Array.from({ length: n }, (_, i) => allow.matches({ ioc_type: rc.iocType(i), ioc: rc.ioc(i) }))
      : undefined;
  const ttl = settings.ttlMs;
  const noTags: readonly string[] = [];

  const db = lake.db;
  const iocsApp = `intel:${opts.loadId}`;
  const sourcesApp = `intel-sources:${opts.loadId}`;
  const done = async (table: string, appId: string) =>
    (await (await lake.table(table))?.txnVersion(appId)) !== undefined;
  const iocsDone = n === 0 || (await done(IOCS_TABLE, iocsApp));
  const sourcesDone = n === 0 || (await done(IOC_SOURCES_TABLE, sourcesApp));
  report.alreadyLoaded = n > 0 && iocsDone && sourcesDone;

  if (!iocsDone || !sourcesDone) {
    const tmp = `__talon_intel_${process.pid}_${++loadSeq}`;
    const f =
      <K extends OptionalField>(name: K) =>
      (i: number) =>
        rc.field(name, i);
    const time = (name: 'first_seen' | 'last_seen') => (i: number) => rc.field(name, i)?.getTime() ?? null;
    const validity = (i: number) =>
      validityEndMs(
        {
          ioc_type: rc.iocType(i),
          valid_until: rc.field('valid_until', i),
          last_seen: rc.field('last_seen', i),
          first_seen: rc.field('first_seen', i),
        },
        ttl,
        nowMs,
      );
    const absent = (name: OptionalField) => rc.has?.(name) === false;
    const columns: Column[] = [
      { name: 'dataset', type: 'VARCHAR', values: f('dataset') },
      { name: 'ioc_type', type: 'VARCHAR', values: (i) => rc.iocType(i) },
      { name: 'ioc', type: 'VARCHAR', values: (i) => rc.ioc(i) },
      { name: 'ioc_id', type: 'VARCHAR', values: (i) => rc.field('ioc_id', i) ?? null },
      { name: 'first_seen', type: 'TIMESTAMP', values: (i) => time('first_seen')(i) ?? nowMs },
      { name: 'last_seen', type: 'TIMESTAMP', values: time('last_seen') },
      { name: 'valid_until', type: 'TIMESTAMP', values: validity },
      { name: 'confidence', type: 'DOUBLE', values: (i) => rc.field('confidence', i) ?? null },
      { name: 'tags', type: 'VARCHAR[]', values: (i) => rc.field('tags', i) ?? noTags },
      { name: 'description', type: 'VARCHAR', values: (i) => rc.field('description', i) ?? null },
      { name: 'reference', type: 'VARCHAR', values: (i) => rc.field('reference', i) ?? null },
      { name: 'allow_listed', type: 'BOOLEAN', values: flags ?? (() => false) },
    ];
    // Fields no record sets are constants: their million accessor calls are skipped.
    const defaults: Partial<Record<string, ColumnValue>> = {
      dataset: parsed instanceof FeedCollector ? parsed.dataset : undefined,
      ioc_id: null,
      last_seen: null,
      confidence: null,
      tags: [],
      description: null,
      reference: null,
    };
    for (const c of columns) {
      const d = defaults[c.name];
      if (d !== undefined && absent(c.name as OptionalField)) c.constant = d;
      if (c.name === 'first_seen' && absent('first_seen')) c.constant = nowMs;
      if (c.name === 'allow_listed' && !flags) c.constant = false;
    }
    await createTempTable(db, tmp, n, columns);
    try {
      // Most feeds list each IoC once: then every record is its own row in both tables and
      // no GROUP BY is needed. Otherwise one row per key: the earliest first_seen, the latest
      // end of validity (NULL = never expires wins), the earliest sighting's
      // dataset/id/description, tags accumulated.
      // Distinct 64-bit hashes are cheaper to count than distinct strings; as many as rows
      // proves there are no duplicates (a collision only sends a load the exact way).
      const d = await db.all<{ keys: bigint }>(
        `SELECT count(DISTINCT hash(ioc_type, ioc)) AS keys FROM ${tmp}`,
      );
      const duplicates = Number(d[0].keys) !== n;
      const sourcesSql = duplicates
        ? `SELECT dataset, ioc_type, ioc, arg_min(ioc_id, first_seen) AS ioc_id,
            min(first_seen) AS first_seen, max(last_seen) AS last_seen,
            CASE WHEN bool_or(valid_until IS NULL) THEN NULL ELSE max(valid_until) END AS valid_until,
            max(confidence) AS confidence, list_distinct(flatten(list(tags))) AS tags,
            arg_min(description, first_seen) AS description, arg_min(reference, first_seen) AS reference,
            bool_or(allow_listed) AS allow_listed
          FROM ${tmp} GROUP BY dataset, ioc_type, ioc`
        : `SELECT * FROM ${tmp}`;
      const iocsSql = duplicates
        ? `SELECT arg_min(dataset, first_seen) AS dataset, ioc, ioc_type,
            arg_min(ioc_id, first_seen) AS ioc_id, min(first_seen) AS first_seen,
            CASE WHEN bool_or(valid_until IS NULL) THEN NULL ELSE max(valid_until) END AS last_seen,
            arg_min(description, first_seen) AS description, bool_or(allow_listed) AS allow_listed
          FROM ${tmp} GROUP BY ioc_type, ioc`
        : `SELECT dataset, ioc, ioc_type, ioc_id, first_seen, valid_until AS last_seen, description,
            allow_listed FROM ${tmp}`;
      if (duplicates) {
        await db.run(`CREATE OR REPLACE TEMP TABLE ${tmp}_sources AS ${sourcesSql}`);
        await db.run(`CREATE OR REPLACE TEMP TABLE ${tmp}_iocs AS ${iocsSql}`);
      }
      const sourcesRel = duplicates ? `SELECT * FROM ${tmp}_sources` : sourcesSql;
      const iocsRel = duplicates ? `SELECT * FROM ${tmp}_iocs` : iocsSql;
      const counts = await db.all<{ ioc_type: string; n: bigint; allowed: bigint }>(
        `SELECT ioc_type, count(*) AS n, count(*) FILTER (WHERE allow_listed) AS allowed
          FROM (${iocsRel}) GROUP BY ioc_type ORDER BY ioc_type`,
      );
      for (const c of counts) {
        report.types[c.ioc_type] = Number(c.n);
        report.stored += Number(c.n);
        report.allowListed += Number(c.allowed);
      }
      if (!iocsDone) {
        const res = await upsertIocs(lake, iocsRel, { appId: iocsApp, now });
        report.iocsVersion = res.version;
        report.inserted = res.inserted;
        report.updated = res.updated;
      }
      if (!sourcesDone) await upsertRows(lake, iocSourcesSpec(now), sourcesRel, { appId: sourcesApp });
    } finally {
      for (const t of [tmp, `${tmp}_sources`, `${tmp}_iocs`]) await db.run(`DROP TABLE IF EXISTS ${t}`);
    }
  } else {
    // Already loaded: what the feed holds, by type (records, not de-duplicated).
    const byType: Record<string, number> = {};
    for (let i = 0; i < n; i++) byType[rc.iocType(i)] = (byType[rc.iocType(i)] ?? 0) + 1;
    for (const t of Object.keys(byType).sort()) report.types[t] = byType[t];
    report.stored = n;
  }
  report.reconciled = await reconcileAllowList(lake, settings.allowList, now);
  return report;
}

/**
 * Brings the allow_listed flag of every stored IoC (iocs and ioc_sources) in line with the
 * allow-list: rows it now matches are flagged, rows it no longer matches are cleared. Costs
 * one filtered scan per table when nothing changed. Returns the rows changed.
 */
export async function reconcileAllowList(
  lake: Lake,
  entries: readonly string[],
  now: Date = new Date(),
): Promise<number> {
  const allow = new AllowList(entries);
  const db = lake.db;
  let changed = 0;
  for (const name of [IOCS_TABLE, IOC_SOURCES_TABLE]) {
    const table = await lake.table(name);
    if (!table) continue;
    const snap = await table.snapshot();
    if (snap.schema.fields.length === 0) continue;
    const hasFlag = snap.schema.fields.some((f) => f.name === 'allow_listed');
    if (!hasFlag && allow.size === 0) continue;
    const scan = await snap.scan();
    const flag = hasFlag ? 'allow_listed' : 'CAST(NULL AS BOOLEAN)';
    const { set, clear } = await allowListChanges(
      db,
      `SELECT *, ${flag} AS __flag FROM ${scan}`,
      allow,
      '__flag',
    );
    if (set.length + clear.length === 0) continue;
    const keys = [...set, ...clear];
    const k = `__talon_allow_${process.pid}_${++loadSeq}`;
    await createTempTable(db, k, keys.length, [
      { name: 'ioc_type', type: 'VARCHAR', values: keys.map((x) => x.ioc_type) },
      { name: 'ioc', type: 'VARCHAR', values: keys.map((x) => x.ioc) },
      { name: 'allow_listed', type: 'BOOLEAN', values: keys.map((_, i) => i < set.length) },
    ]);
    try {
      const ts = timestampSql(now);
      const source =
        name === IOCS_TABLE
          ? `SELECT ioc_type, ioc, allow_listed, ${ts} AS loaded_at FROM ${k}`
          : `SELECT s.dataset, s.ioc_type, s.ioc, k.allow_listed, ${ts} AS loaded_at
              FROM ${scan} s JOIN ${k} k ON k.ioc_type = s.ioc_type AND k.ioc = s.ioc
              WHERE ${hasFlag ? 'coalesce(s.allow_listed, false) <> k.allow_listed' : 'k.allow_listed'}`;
      const res = await table.merge(source, {
        on: name === IOCS_TABLE ? ['ioc_type', 'ioc'] : ['dataset', 'ioc_type', 'ioc'],
        whenMatched: 'update',
        whenNotMatched: 'ignore',
      });
      changed += res.metrics.numTargetRowsUpdated ?? 0;
    } finally {
      await db.run(`DROP TABLE IF EXISTS ${k}`);
    }
  }
  return changed;
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
    r.reconciled ? `allow-list changed: ${r.reconciled} stored row(s) re-flagged` : '',
    countOf(r.rejected) ? `${countOf(r.rejected)} rejected (${fmt(r.rejected)})` : '',
    countOf(r.unsupported) ? `${countOf(r.unsupported)} unsupported (${fmt(r.unsupported)})` : '',
    countOf(r.skipped) ? `${countOf(r.skipped)} skipped (${fmt(r.skipped)})` : '',
    r.alreadyLoaded
      ? 'already loaded'
      : r.iocsVersion !== null
        ? `iocs version ${r.iocsVersion} (${r.inserted} new, ${r.updated} changed)`
        : '',
  ];
  return parts.filter(Boolean).join('; ');
}

function fmt(m: Record<string, number>): string {
  return Object.entries(m)
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ');
}
