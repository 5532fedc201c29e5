/**
 * The IoC join shared by live matching (ioc_match) and the retro-hunt: which event values
 * match which IoCs, as DuckDB SQL that stays a hash join whatever the number of IoCs.
 *
 * - Exact types (hashes, hostname, IPv4, IPv6, URL …): equality on (ioc_type, ioc). Event
 *   values are compared as the intel normalizer stores IoCs (hashes, names, IPv6 lower-case;
 *   names without the trailing root dot). They are not trimmed: Falcon's fields carry no
 *   surrounding blanks, and trim() costs as much as the whole join.
 * - `domain` IoCs match a name equal to them or under them at a label boundary: `evil.com`
 *   matches `evil.com` and `a.b.evil.com`, never `notevil.com`; `b.evil.com` (not a registered
 *   domain) matches `x.b.evil.com`. The event name is cut into its suffixes of the label
 *   counts that domain IoCs have (usually 2–4) and those are hash-joined; no LIKE, no scan of
 *   the IoC list per event.
 * - `IPv4-CIDR` / `IPv6-CIDR` IoCs (network/prefix, as the normalizer stores them) match the
 *   addresses inside them: the event address as an integer (UBIGINT / UHUGEINT, exact), cut
 *   to each prefix length in use and hash-joined to the networks (a range join on
 *   [first, last] address when the CIDR IoCs use more than 8 prefix lengths).
 * - Allow-listed IoCs (`allow_listed = true`) never match; a table without that column (or a
 *   NULL) means not allow-listed.
 */
import { columnOr } from '../engine/operators.js';
import { ident, literal } from '../sql/duckdb.js';
import type { Db } from '../sql/duckdb.js';
import { tableKey, type MicroBatch } from '../engine/batch.js';

/** The common columns every match carries (the seed's ioc_match output). */
export const COMMON_COLUMNS = [
  ['event_simpleName', 'VARCHAR'],
  ['timestamp', 'TIMESTAMP'],
  ['id', 'VARCHAR'],
  ['aid', 'VARCHAR'],
  ['cid', 'VARCHAR'],
  ['aip', 'VARCHAR'],
] as const;

const LOWER_CASE = /^(FileHash-|hostname$|domain$|email$|IPv6$)/i;
const NAME = /^(hostname|domain)$/i;

/** An event value as the IoC of `iocType` would be stored (see the header). */
export function eventIocSql(iocType: string, valueSql: string): string {
  const v = `CAST(${valueSql} AS VARCHAR)`;
  if (NAME.test(iocType)) return `rtrim(lower(${v}), '.')`;
  if (LOWER_CASE.test(iocType)) return `lower(${v})`;
  return v;
}

/** A dotted-quad string as a UBIGINT; NULL when it is not one. */
export function ipv4IntSql(v: string): string {
  const o = (n: number) => `CAST(TRY_CAST(split_part(${v}, '.', ${n}) AS UTINYINT) AS UBIGINT)`;
  return `(CASE WHEN length(${v}) - length(replace(${v}, '.', '')) = 3
    THEN (${o(1)} << CAST(24 AS UBIGINT)) | (${o(2)} << CAST(16 AS UBIGINT)) | (${o(3)} << CAST(8 AS UBIGINT)) | ${o(4)} END)`;
}

/**
 * An IPv6 address (any textual form without an embedded dotted quad) as a UHUGEINT; NULL
 * when it is not one.
 */
export function ipv6IntSql(v: string): string {
  const s = `lower(${v})`;
  const groups = (part: string) =>
    `CASE WHEN ${part} = '' THEN []::VARCHAR[] ELSE string_split(${part}, ':') END`;
  const head = groups(`split_part(${s}, '::', 1)`);
  const tail = `CASE WHEN contains(${s}, '::') THEN ${groups(`split_part(${s}, '::', 2)`)} ELSE []::VARCHAR[] END`;
  const full = `(${head} || CASE WHEN contains(${s}, '::')
      THEN list_transform(range(greatest(8 - len(${head}) - len(${tail}), 0)), x -> '0') ELSE []::VARCHAR[] END || ${tail})`;
  const hex = `array_to_string(list_transform(${full}, g -> lpad(g, 4, '0')), '')`;
  const half = (from: number) => `TRY_CAST(('0x' || substr(${hex}, ${from}, 16)) AS UBIGINT)`;
  return `(CASE WHEN regexp_full_match(${s}, '[0-9a-f:]{2,39}') AND len(${full}) = 8
      AND NOT list_bool_or(list_transform(${full}, g -> g = '' OR length(g) > 4))
    THEN (CAST(${half(1)} AS UHUGEINT) << CAST(64 AS UHUGEINT)) | CAST(${half(17)} AS UHUGEINT) END)`;
}

export interface DomainIndex {
  /** relation: the domain IoCs (all IoC columns) */
  rel: string;
  /** label counts of the domain IoCs (2 for evil.com, 3 for b.evil.com) */
  labelCounts: number[];
}

export interface CidrIndex {
  /**
   * relation: the CIDR IoCs plus `__lo`, `__hi` (first and last address as integers),
   * `__shift` (host bits) and `__prefix`
   */
  rel: string;
  /** the host-bit counts in use (one per prefix length), ascending */
  shifts: number[];
}

/** Up to this many prefix lengths, CIDRs are hash-joined per length; beyond, range-joined. */
const HASHED_PREFIX_LENGTHS = 8;

/** The IoCs one batch matches against, prepared once per batch. */
export interface IocIndex {
  /** relation of every IoC that may alert (exact-type rows used) */
  exact: string;
  /**
   * `exact` has a `__key` column, hash(ioc_type, ioc), computed once when the index was
   * prepared: the per-batch join then hashes and compares one integer per IoC instead of two
   * strings (the strings are compared on the few key matches only).
   */
  keyed?: boolean;
  domains?: DomainIndex;
  cidr4?: CidrIndex;
  cidr6?: CidrIndex;
}

/** `WHERE` clause keeping IoCs that may alert: allow-listed rows out (column optional). */
export async function notAllowListedSql(batch: MicroBatch, iocs: string): Promise<string> {
  const cols = await batch.columns(iocs);
  const c = cols.get('allow_listed');
  return c ? `NOT coalesce(CAST(${ident(c)} AS BOOLEAN), false)` : 'true';
}

/**
 * The match index of an IoC relation (columns ioc_type, ioc and the rest). `active` must
 * already exclude allow-listed rows. Small temp tables (for the rest of the batch) for
 * domains and CIDRs; the exact IoCs stay the given relation (read once by the hash join's
 * build side). Live matching keeps its index between batches instead: cachedIocIndex.
 */
export async function buildIocIndex(
  batch: MicroBatch,
  active: string,
  mappedTypes: Set<string>,
): Promise<IocIndex> {
  return prepareIocIndex(batch.db, (label, sql) => batch.temp(label, sql), active, mappedTypes);
}

/** buildIocIndex with the temp tables made by `create` (label, SELECT) → quoted name. */
async function prepareIocIndex(
  db: Db,
  create: (label: string, sql: string) => Promise<string>,
  active: string,
  mappedTypes: Set<string>,
): Promise<IocIndex> {
  const index: IocIndex = { exact: active };
  const names = mappedTypes.has('hostname') || mappedTypes.has('domain');
  // One read of the IoC list for every type not matched by equality (a small share of it).
  const wanted = [
    ...(names ? ['domain'] : []),
    ...(mappedTypes.has('IPv4') ? ['IPv4-CIDR'] : []),
    ...(mappedTypes.has('IPv6') ? ['IPv6-CIDR'] : []),
  ];
  if (wanted.length === 0) return index;
  const special = await create(
    'ioc_special',
    `SELECT * FROM ${active} WHERE ioc_type IN (${wanted.map(literal).join(', ')})`,
  );
  const kinds = await db.all<{ ioc_type: string }>(`SELECT DISTINCT ioc_type FROM ${special}`);
  const has = new Set(kinds.map((k) => k.ioc_type));
  active = special;
  if (names && has.has('domain')) {
    const rel = await create(
      'ioc_domains',
      `SELECT *, CAST(len(string_split(ioc, '.')) AS INTEGER) AS __labels, hash(ioc) AS __h
       FROM ${active} WHERE ioc_type = 'domain'`,
    );
    const counts = await db.all<{ n: number }>(`SELECT DISTINCT __labels AS n FROM ${rel} ORDER BY 1`);
    index.domains = { rel, labelCounts: counts.map((c) => Number(c.n)) };
  }
  const cidr = async (type: 'IPv4-CIDR' | 'IPv6-CIDR'): Promise<CidrIndex | undefined> => {
    const bits = type === 'IPv4-CIDR' ? 32 : 128;
    if (!mappedTypes.has(type === 'IPv4-CIDR' ? 'IPv4' : 'IPv6') || !has.has(type)) return undefined;
    const addr = `split_part(ioc, '/', 1)`;
    const addrInt = type === 'IPv4-CIDR' ? ipv4IntSql(addr) : ipv6IntSql(addr);
    const int = type === 'IPv4-CIDR' ? 'UBIGINT' : 'UHUGEINT';
    const rel = await create(
      `ioc_${type.replace('-', '_')}`,
      `SELECT *, (__lo + ((CAST(1 AS ${int}) << __shift) - CAST(1 AS ${int}))) AS __hi, hash(__shift, __lo) AS __k FROM (
         SELECT *, ((__addr >> __shift) << __shift) AS __lo FROM (
           SELECT *, CAST(${bits} - __prefix AS ${int}) AS __shift FROM (
             SELECT *, TRY_CAST(split_part(ioc, '/', 2) AS INTEGER) AS __prefix, ${addrInt} AS __addr
             FROM ${active} WHERE ioc_type = ${literal(type)})
           WHERE __addr IS NOT NULL AND __prefix BETWEEN 1 AND ${bits}))`,
    );
    const shifts = await db.all<{ s: number }>(
      `SELECT DISTINCT CAST(__shift AS INTEGER) AS s FROM ${rel} ORDER BY 1`,
    );
    return shifts.length > 0 ? { rel, shifts: shifts.map((x) => Number(x.s)) } : undefined;
  };
  index.cidr4 = await cidr('IPv4-CIDR');
  index.cidr6 = await cidr('IPv6-CIDR');
  return index;
}

/** The columns of a match after the common ones, in order. */
export const MATCH_COLUMNS = [
  'ioc_type',
  'ioc',
  'source_table',
  'source_version',
  'dataset',
  'ioc_id',
  'ioc_first_seen',
  'ioc_last_seen',
  'ioc_description',
];

/** What the IoC columns of a match are called. */
const IOC_DETAILS = `i.dataset, i.ioc_id, i.first_seen AS ioc_first_seen, i.last_seen AS ioc_last_seen,
  i.description AS ioc_description`;

export interface MappedSource {
  table: string;
  /** FROM-able relation of the events to match */
  rel: string;
  /** its columns, lower-case → actual */
  cols: Map<string, string>;
  /** column (dotted for struct fields) → ioc_type */
  mapping: Record<string, string>;
  /** SQL of the source version column */
  versionSql: string;
}

/**
 * The matches of mapped sources against an index, one row per (event, column, IoC):
 * common columns, ioc_type, ioc, source_table, source_version, dataset, ioc_id,
 * ioc_first_seen, ioc_last_seen, ioc_description. `window(e, i)` is the SQL predicate on the
 * event time (`e.timestamp`) and the IoC row (`i.*`); undefined when nothing can match.
 */
export function matchSql(
  sources: MappedSource[],
  index: IocIndex,
  window: (e: string, i: string) => string,
  /** IoC columns `window` reads beyond first_seen and last_seen */
  windowColumns: string[] = [],
): string | undefined {
  const exact: string[] = [];
  const suffixes: string[] = [];
  const cidr4: string[] = [];
  const cidr6: string[] = [];
  for (const src of sources) {
    const common = COMMON_COLUMNS.map(([c, t]) => columnOr(src.cols, c, t)).join(', ');
    const head = `${common}, ${literal(src.table)} AS source_table, ${src.versionSql} AS source_version`;
    for (const [column, type] of Object.entries(src.mapping)) {
      if (!src.cols.has(column.split('.')[0].toLowerCase())) continue;
      const raw = columnOr(src.cols, column, 'VARCHAR', '__v').replace(/ AS "__v"$/, '');
      const rel = src.rel;
      const value = eventIocSql(type, raw);
      // A domain-typed column holds names too: its exact match is the full-length suffix.
      if (!(type === 'domain' && index.domains)) {
        exact.push(`SELECT ${head}, ${literal(type)} AS ioc_type, ${value} AS ioc FROM ${rel}`);
      }
      if (NAME.test(type) && index.domains) {
        const parts = `string_split(${value}, '.')`;
        const cut = index.domains.labelCounts.map(
          (n) => `CASE WHEN len(__p) >= ${n} THEN array_to_string(__p[-${n}:], '.') END`,
        );
        suffixes.push(
          `SELECT * EXCLUDE (__p) FROM (SELECT ${head}, 'domain' AS ioc_type, unnest([${cut.join(', ')}]) AS ioc, __p
             FROM (SELECT *, ${parts} AS __p FROM ${rel}) WHERE ${value} <> '')`,
        );
      }
      if (type === 'IPv4' && index.cidr4) {
        cidr4.push(`SELECT ${head}, ${ipv4IntSql(raw)} AS __addr FROM ${rel}`);
      }
      if (type === 'IPv6' && index.cidr6) {
        cidr6.push(`SELECT ${head}, ${ipv6IntSql(raw)} AS __addr FROM ${rel}`);
      }
    }
  }
  const w = window('e', 'i');
  // The window as one CASE, not two comparisons: with inequality conditions beside the
  // equality DuckDB may plan an inequality join instead of a hash join on the IoC.
  const where = `WHERE CASE WHEN ${w} THEN true ELSE false END`;
  const details = IOC_DETAILS;
  const parts: string[] = [];
  if (exact.length) {
    // The hash table holds the key and the window only (the IoC list can be millions of
    // rows); the descriptive columns are looked up for the few matches afterwards.
    const keyCols = ['ioc_type', 'ioc', 'first_seen', 'last_seen', ...windowColumns].map(ident).join(', ');
    if (index.keyed) {
      // The IoCs hit are found first by a semi-join on the precomputed integer key (the
      // event keys are the small side, the IoC table is scanned once for one integer
      // column); only those few rows meet the events' payload. Type, value and window are
      // then checked inside a CASE, so they stay a filter and not join conditions.
      const same = `i.ioc_type = e.ioc_type AND i.ioc = e.ioc`;
      parts.push(`WITH e AS MATERIALIZED (
          SELECT *, hash(ioc_type, ioc) AS __key FROM (${exact.join(' UNION ALL ')})),
        hit AS (SELECT __key, ${keyCols}, dataset, ioc_id, description FROM ${index.exact}
          WHERE __key IN (SELECT __key FROM e))
        SELECT e.* EXCLUDE (__key), i.first_seen AS ioc_first_seen, i.last_seen AS ioc_last_seen,
          i.dataset, i.ioc_id, i.description AS ioc_description
        FROM e JOIN hit i ON i.__key = e.__key
        WHERE CASE WHEN ${same} AND (${w}) THEN true ELSE false END`);
    } else {
      parts.push(`SELECT m.*, d.dataset, d.ioc_id, d.description AS ioc_description FROM (
        SELECT e.*, i.first_seen AS ioc_first_seen, i.last_seen AS ioc_last_seen FROM (${exact.join(' UNION ALL ')}) e
        JOIN (SELECT ${keyCols} FROM ${index.exact}) i ON i.ioc_type = e.ioc_type AND i.ioc = e.ioc ${where}) m
      LEFT JOIN (SELECT ioc_type, ioc, dataset, ioc_id, description FROM ${index.exact}) d
        ON d.ioc_type = m.ioc_type AND d.ioc = m.ioc`);
    }
  }
  if (suffixes.length && index.domains) {
    parts.push(`SELECT e.*, ${details} FROM (${suffixes.join(' UNION ALL ')}) e
      JOIN ${index.domains.rel} i ON i.ioc = e.ioc ${where}`);
  }
  // A few prefix lengths (the usual feed): the address cut to each length, hash-joined on
  // (host bits, network). Many: a range join (DuckDB's IEJoin, both sides sorted once).
  const byRange = (branches: string[], idx: CidrIndex | undefined, type: string) => {
    if (!branches.length || !idx) return;
    const events = `(SELECT * FROM (${branches.join(' UNION ALL ')}) WHERE __addr IS NOT NULL)`;
    if (idx.shifts.length <= HASHED_PREFIX_LENGTHS) {
      const int = type === 'IPv4-CIDR' ? 'UBIGINT' : 'UHUGEINT';
      parts.push(`SELECT e.* EXCLUDE (__addr, __shift, __net), ${literal(type)} AS ioc_type, i.ioc, ${details}
        FROM (SELECT *, (__addr >> __shift) << __shift AS __net FROM (
                SELECT *, unnest([${idx.shifts.map((x) => `CAST(${x} AS ${int})`).join(', ')}]) AS __shift FROM ${events})) e
        JOIN ${idx.rel} i ON i.__shift = e.__shift AND i.__lo = e.__net ${where}`);
      return;
    }
    parts.push(`SELECT e.* EXCLUDE (__addr), ${literal(type)} AS ioc_type, i.ioc, ${details}
      FROM ${events} e
      JOIN ${idx.rel} i ON e.__addr >= i.__lo AND e.__addr <= i.__hi ${where}`);
  };
  byRange(cidr4, index.cidr4, 'IPv4-CIDR');
  byRange(cidr6, index.cidr6, 'IPv6-CIDR');
  if (!parts.length) return undefined;
  const order = [...COMMON_COLUMNS.map(([c]) => c), ...MATCH_COLUMNS].map(ident).join(', ');
  return parts.map((p) => `SELECT ${order} FROM (${p})`).join(' UNION ALL ');
}

/** One mapped (table, column, ioc_type) of a batch: what the value-first matcher probes. */
export interface Probe {
  sid: number;
  src: MappedSource;
  type: string;
  /** the column (or struct field) as VARCHAR, over the source's columns */
  raw: string;
}

/** The mapped columns of the sources that are present, numbered. */
export function probesOf(sources: MappedSource[]): Probe[] {
  const probes: Probe[] = [];
  for (const src of sources) {
    for (const [column, type] of Object.entries(src.mapping)) {
      if (!src.cols.has(column.split('.')[0].toLowerCase())) continue;
      const raw = columnOr(src.cols, column, 'VARCHAR', '__v').replace(/ AS "__v"$/, '');
      probes.push({ sid: probes.length, src, type, raw });
    }
  }
  return probes;
}

/**
 * The distinct values of every probed column in one pass of narrow reads (only the mapped
 * columns), as a temp table: `__sid`, `__raw` (NULL included), `__n` (rows with that value),
 * `__ioc` (the value as the IoC of the column's type would be stored) and `__key`
 * (hash(ioc_type, ioc), the cached index's key). Every later matching step runs on these
 * distinct values, not on rows: a fleet repeats the same hashes, names and addresses all day.
 */
export async function probeValues(
  temp: (label: string, sql: string) => Promise<string>,
  probes: Probe[],
): Promise<string> {
  // Grouped per column (small hash tables), the IoC form and key computed once per value.
  return temp(
    'ioc_values',
    probes
      .map((p) => {
        const ioc = eventIocSql(p.type, '__raw');
        return `SELECT __sid, __raw, __n, ${ioc} AS __ioc, hash(${literal(p.type)}, ${ioc}) AS __key
          FROM (SELECT ${p.sid} AS __sid, __raw, count(*) AS __n
                FROM (SELECT ${p.raw} AS __raw FROM ${p.src.rel}) GROUP BY ALL)`;
      })
      .join(' UNION ALL '),
  );
}

/**
 * The live matches of the probed columns against an index (same rows as matchSql), from
 * their distinct values (probeValues):
 *
 * 1. values against the index — the IoC keys (one integer column of the cached list) probe
 *    the batch's value keys, then the few IoC rows hit are fetched by key; domain suffixes
 *    and CIDR networks are hash-joined — into a small table of hits;
 * 2. only the columns with hits are read again, joined to their hits on the raw value, for
 *    the event columns of the matching rows.
 *
 * Joining every row with its event columns before the IoCs made the match most of the
 * batch's cost; now ids, times and strings are read and converted for matching rows only.
 * Undefined when nothing matched.
 */
export async function matchByValue(
  db: Db,
  temp: (label: string, sql: string) => Promise<string>,
  probes: Probe[],
  values: string,
  index: IocIndex,
  window: (e: string, i: string) => string,
): Promise<string | undefined> {
  if (probes.length === 0) return undefined;
  const sids = (keep: (p: Probe) => boolean) =>
    probes
      .filter(keep)
      .map((p) => p.sid)
      .join(', ');
  const hitCols = (iocType: string) =>
    `v.__sid, v.__raw, ${iocType} AS __ioc_type, i.ioc AS __ioc, i.first_seen AS __first_seen,
     i.last_seen AS __last_seen, i.dataset AS __dataset, i.ioc_id AS __ioc_id, i.description AS __description`;
  const usable = `(SELECT * FROM ${values} WHERE __ioc IS NOT NULL AND __ioc <> '')`;
  const parts: string[] = [];
  // A domain-typed column holds names too: its exact match is the full-length suffix.
  const exact = sids((p) => !(p.type === 'domain' && index.domains));
  if (exact) {
    const iocCols = 'ioc_type, ioc, first_seen, last_seen, dataset, ioc_id, description';
    let iocs: string;
    let candidates = usable;
    if (index.keyed) {
      // Only the key column of the IoC list (millions of rows) is scanned; the other columns
      // are read for the keys hit, by key (an ART index lookup for a few hundred). Empty and
      // NULL values need no filter here: the join below compares the values themselves.
      const hit = await db.all<{ k: bigint }>(
        `SELECT DISTINCT __key AS k FROM ${index.exact}
         WHERE __key IN (SELECT __key FROM ${values} WHERE __sid IN (${exact}))`,
      );
      const keys = hit.map((h) => String(h.k)).join(', ');
      // A constant IN list is pushed into the scan (only the key column is read for the
      // rest); inside the join below it would not be.
      iocs = hit.length
        ? await temp('ioc_exact_hit', `SELECT __key, ${iocCols} FROM ${index.exact} WHERE __key IN (${keys})`)
        : '';
      // Both sides cut to the keys hit, so the join is between a few hundred rows each.
      candidates = hit.length ? `(SELECT * FROM ${usable} WHERE __key IN (${keys}))` : usable;
    } else {
      iocs = `(SELECT hash(ioc_type, ioc) AS __key, ${iocCols} FROM ${index.exact})`;
    }
    if (iocs) {
      parts.push(`SELECT ${hitCols('i.ioc_type')} FROM ${candidates} v
        JOIN ${iocs} i ON i.__key = v.__key AND i.ioc = v.__ioc
        WHERE v.__sid IN (${exact}) AND i.ioc_type = CASE v.__sid ${probes.map((p) => `WHEN ${p.sid} THEN ${literal(p.type)}`).join(' ')} END`);
    }
  }
  // Domain suffixes and CIDR networks: the value rows whose suffix / network is in the index
  // are found against the narrow key columns first, then only those few meet the IoC rows
  // (a join carrying the IoC columns would hash the whole domain or CIDR list every batch).
  const names = sids((p) => NAME.test(p.type));
  if (names && index.domains) {
    const cut = index.domains.labelCounts.map(
      (n) => `CASE WHEN len(__p) >= ${n} THEN array_to_string(__p[-${n}:], '.') END`,
    );
    const suffixes = `(SELECT __sid, __raw, unnest([${cut.join(', ')}]) AS __suffix
      FROM (SELECT *, string_split(__ioc, '.') AS __p FROM ${usable} WHERE __sid IN (${names})))`;
    parts.push(`SELECT ${hitCols("'domain'")}
      FROM (SELECT * FROM ${suffixes} WHERE hash(__suffix) IN (SELECT __h FROM ${index.domains.rel})) v
      JOIN ${index.domains.rel} i ON i.ioc = v.__suffix`);
  }
  const cidr = (ipType: 'IPv4' | 'IPv6', idx: CidrIndex | undefined) => {
    const these = sids((p) => p.type === ipType);
    if (!these || !idx) return;
    const iocType = literal(`${ipType}-CIDR`);
    const addrs =
      ipType === 'IPv4'
        ? // Octets cast as one list: a quarter of the string work of four split_part calls.
          `(SELECT __sid, __raw, CASE WHEN len(__o) = 4 AND list_count(__o) = 4 THEN
              (CAST(__o[1] AS UBIGINT) << 24) | (CAST(__o[2] AS UBIGINT) << 16) | (CAST(__o[3] AS UBIGINT) << 8) | CAST(__o[4] AS UBIGINT) END AS __addr
            FROM (SELECT __sid, __raw, TRY_CAST(string_split(__ioc, '.') AS UTINYINT[]) AS __o FROM ${usable} WHERE __sid IN (${these})))`
        : `(SELECT __sid, __raw, ${ipv6IntSql('__ioc')} AS __addr FROM ${usable} WHERE __sid IN (${these}))`;
    if (idx.shifts.length <= HASHED_PREFIX_LENGTHS) {
      const int = ipType === 'IPv4' ? 'UBIGINT' : 'UHUGEINT';
      const nets = `(SELECT *, (__addr >> __shift) << __shift AS __net FROM (
          SELECT *, unnest([${idx.shifts.map((x) => `CAST(${x} AS ${int})`).join(', ')}]) AS __shift
          FROM ${addrs} WHERE __addr IS NOT NULL))`;
      parts.push(`SELECT ${hitCols(iocType)}
        FROM (SELECT * FROM ${nets} WHERE hash(__shift, __net) IN (SELECT __k FROM ${idx.rel})) v
        JOIN ${idx.rel} i ON i.__shift = v.__shift AND i.__lo = v.__net`);
    } else {
      parts.push(`SELECT ${hitCols(iocType)} FROM ${addrs} v
        JOIN ${idx.rel} i ON v.__addr >= i.__lo AND v.__addr <= i.__hi`);
    }
  };
  cidr('IPv4', index.cidr4);
  cidr('IPv6', index.cidr6);
  if (parts.length === 0) return undefined;
  // One statement per kind: as branches of one UNION ALL they planned worse than apart.
  const hits = await temp('ioc_hits', parts[0]);
  for (const part of parts.slice(1)) await db.run(`INSERT INTO ${hits} ${part}`);
  const hitSids = new Set(
    (await db.all<{ s: number }>(`SELECT DISTINCT __sid AS s FROM ${hits}`)).map((r) => Number(r.s)),
  );
  if (hitSids.size === 0) return undefined;
  const w = window('m', 'm');
  const order = [...COMMON_COLUMNS.map(([c]) => c), ...MATCH_COLUMNS].map(ident).join(', ');
  return probes
    .filter((p) => hitSids.has(p.sid))
    .map((p) => {
      const common = COMMON_COLUMNS.map(([c, t]) => columnOr(p.src.cols, c, t)).join(', ');
      // The event columns are converted after the join, for the matching rows only.
      return `SELECT ${order} FROM (
          SELECT ${common}, ${literal(p.src.table)} AS source_table, ${p.src.versionSql} AS source_version,
            h.__ioc_type AS ioc_type, h.__ioc AS ioc, h.__dataset AS dataset, h.__ioc_id AS ioc_id,
            h.__first_seen AS ioc_first_seen, h.__last_seen AS ioc_last_seen, h.__description AS ioc_description,
            h.__first_seen AS first_seen, h.__last_seen AS last_seen
          FROM ${p.src.rel} JOIN (SELECT * FROM ${hits} WHERE __sid = ${p.sid}) h ON h.__raw = ${p.raw}) m
        WHERE CASE WHEN ${w} THEN true ELSE false END`;
    })
    .join(' UNION ALL ');
}

/**
 * A prepared index of the `iocs` table kept in the DuckDB instance between micro-batches:
 * the IoCs that may alert (allow-listed rows out) copied once into a temp table, plus the
 * domain and CIDR tables built from it. Rebuilding from the Delta snapshot in every batch
 * read the whole IoC list (millions of rows, Parquet) each time and dominated live matching.
 *
 * Keyed by the DuckDB instance (temp tables live there), the lake root and the `iocs`
 * version the batch planned against (recorded in its offsets), with that version's commit
 * time so a table deleted and recreated at the same place is never mistaken for the old
 * one. A replay of batch N plans against the version in its offsets and therefore gets an
 * index of exactly that version; a cached index of any other version is never used — it is
 * dropped and rebuilt. Only one version per (instance, lake) is kept, and at most
 * MAX_CACHED_LAKES lakes per instance (oldest dropped), so temp tables cannot pile up when
 * lakes share a Db; closing the Db (Lake.close of a lake that owns it) frees them all.
 */
interface CachedIndex {
  /** `<version>@<commit ms>` of the IoC table the index was built from */
  version: string;
  /** every IoC type prepared (the batch's index keeps those its mapping uses) */
  index: IocIndex;
  /** temp tables holding it, dropped when the entry goes */
  tables: string[];
}

const MAX_CACHED_LAKES = 4;
const cachedIndexes = new WeakMap<Db, Map<string, Promise<CachedIndex | undefined>>>();
let cacheSeq = 0;

/** Counters for tests and the bench: how often the cached index was built and reused. */
export const iocIndexCacheStats = { builds: 0, reuses: 0 };

async function dropCached(db: Db, entry: Promise<CachedIndex | undefined>): Promise<void> {
  const e = await entry.catch(() => undefined);
  for (const t of e?.tables ?? []) await db.run(`DROP TABLE IF EXISTS ${t}`);
}

/** Drops every cached IoC index held in `db` (e.g. before a shared Db outlives its lakes). */
export async function releaseIocIndexes(db: Db): Promise<void> {
  const m = cachedIndexes.get(db);
  if (!m) return;
  cachedIndexes.delete(db);
  for (const e of m.values()) await dropCached(db, e);
}

async function buildCached(db: Db, iocs: string, allowSql: string, version: string): Promise<CachedIndex> {
  const seq = ++cacheSeq;
  const tables: string[] = [];
  const create = async (label: string, sql: string) => {
    const name = ident(`__talon_iocidx_${seq}_${label}`);
    await db.run(`CREATE OR REPLACE TEMP TABLE ${name} AS ${sql}`);
    tables.push(name);
    return name;
  };
  try {
    const active = await create(
      'active',
      `SELECT *, hash(ioc_type, ioc) AS __key FROM ${iocs} WHERE ${allowSql}`,
    );
    // The IoC rows a batch hits are fetched by key: an ART index makes that a lookup of a
    // few hundred keys instead of a scan of every column of the list.
    await db.run(`CREATE INDEX ${ident(`__talon_iocidx_${seq}_key`)} ON ${active} (__key)`);
    const index = await prepareIocIndex(db, create, active, new Set(['hostname', 'domain', 'IPv4', 'IPv6']));
    index.keyed = true;
    // The non-exact IoCs were only read to build the domain and CIDR tables.
    const special = ident(`__talon_iocidx_${seq}_ioc_special`);
    if (tables.includes(special)) {
      await db.run(`DROP TABLE IF EXISTS ${special}`);
      tables.splice(tables.indexOf(special), 1);
    }
    iocIndexCacheStats.builds++;
    return { version, index, tables };
  } catch (e) {
    for (const t of tables) await db.run(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
    throw e;
  }
}

/**
 * The match index of snapshot table `table` (default `iocs`) at the version `batch` planned
 * against, built once per version and kept between batches (see CachedIndex). Undefined when
 * the table did not exist at that version or has no schema yet.
 */
export async function cachedIocIndex(
  batch: MicroBatch,
  table: string,
  mappedTypes: Set<string>,
): Promise<IocIndex | undefined> {
  const v = batch.snapshotVersion(table);
  if (v < 0) return undefined;
  const t = await batch.lake.table(tableKey(table));
  if (!t) return undefined;
  const snap = await t.snapshot({ version: v });
  if (snap.schema.fields.length === 0) return undefined;
  const version = `${v}@${snap.timestamp}`;
  const db = batch.db;
  let perDb = cachedIndexes.get(db);
  if (!perDb) cachedIndexes.set(db, (perDb = new Map()));
  const where = `${batch.lake.location}\u0000${tableKey(table)}`;
  let entry = perDb.get(where);
  const current = await entry?.catch(() => undefined);
  if (entry && current?.version === version) {
    iocIndexCacheStats.reuses++;
    // Most recently used last: eviction takes the first key.
    perDb.delete(where);
    perDb.set(where, entry);
  } else {
    if (entry) {
      perDb.delete(where);
      await dropCached(db, entry);
    }
    const iocs = `(${await snap.scan()})`;
    const allowSql = await notAllowListedSql(batch, iocs);
    entry = buildCached(db, iocs, allowSql, version);
    perDb.set(where, entry);
    while (perDb.size > MAX_CACHED_LAKES) {
      const [oldest, e] = perDb.entries().next().value as [string, Promise<CachedIndex | undefined>];
      perDb.delete(oldest);
      await dropCached(db, e);
    }
  }
  let built: CachedIndex | undefined;
  try {
    built = await entry;
  } catch (e) {
    perDb.delete(where);
    throw e;
  }
  if (!built) return undefined;
  // The prepared index holds every type; a batch only joins what its mapping uses.
  const names = mappedTypes.has('hostname') || mappedTypes.has('domain');
  return {
    exact: built.index.exact,
    keyed: built.index.keyed,
    domains: names ? built.index.domains : undefined,
    cidr4: mappedTypes.has('IPv4') ? built.index.cidr4 : undefined,
    cidr6: mappedTypes.has('IPv6') ? built.index.cidr6 : undefined,
  };
}
