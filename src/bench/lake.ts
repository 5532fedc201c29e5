/**
 * `npm run bench -- lake`: what the Delta layer costs over DuckDB writing plain Parquet.
 *
 * One run builds N rows (default 1,000,000) of an FDR-shaped NetworkListenIP4 table in DuckDB,
 * then measures, on the same rows and the same DuckDB instance:
 * - Talon: append in C commits (default 10) to a Delta table partitioned by event_date; a full
 *   scan (count + sum) of the latest snapshot; a filtered scan of one event_date (partition
 *   pruning skips every other file). Scan times include loading the snapshot from the log,
 *   as a user query does.
 * - Plain: DuckDB `COPY … TO … (FORMAT parquet, PARTITION_BY event_date)` of the same C chunks,
 *   and `read_parquet` full / filtered scans over those files (hive partition pruning).
 * Rows/s of a scan count the table's rows (what a query covers), not only the matched ones.
 * Issue #2's target: Talon append ≥ 0.8× plain Parquet.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Db, literal } from '../sql/duckdb.js';
import { Lake } from '../lake/lake.js';
import type { Benchmark } from './main.js';

const APPEND_TARGET = 0.8;

interface Options {
  rows: number;
  commits: number;
  days: number;
  repeat: number;
  dir?: string;
  keep: boolean;
  threads?: number;
  format: 'text' | 'json';
  /** Parquet codec for both sides (Talon's default is zstd). */
  codec: 'zstd' | 'snappy' | 'uncompressed';
  /** No progress lines on stderr. */
  quiet?: boolean;
}

const HELP = `npm run bench -- lake [flags]
  --rows N        rows to write (default 1000000)
  --commits N     Talon commits / plain COPY chunks (default 10)
  --days N        distinct event_date partitions, rows in time order (default 30)
  --repeat N      runs of each scan; the best counts (default 3)
  --dir DIR       work folder (kept); default: a temp folder, removed afterwards
  --keep          keep the temp folder
  --threads N     DuckDB threads (default: DuckDB's choice)
  --codec C       Parquet codec for both sides: zstd (Talon's default), snappy, uncompressed
  --format json   print the result as JSON on stdout
`;

function parse(args: string[]): Options | undefined {
  const { values } = parseArgs({
    args,
    options: {
      rows: { type: 'string' },
      commits: { type: 'string' },
      days: { type: 'string' },
      repeat: { type: 'string' },
      dir: { type: 'string' },
      keep: { type: 'boolean' },
      threads: { type: 'string' },
      format: { type: 'string' },
      codec: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const int = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v.replace(/_/g, ''));
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} wants a positive integer, got ${v}`);
    return n;
  };
  const format = values.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw new Error(`--format wants text or json, got ${format}`);
  const codec = values.codec ?? 'zstd';
  if (codec !== 'zstd' && codec !== 'snappy' && codec !== 'uncompressed') {
    throw new Error(`--codec wants zstd, snappy or uncompressed, got ${codec}`);
  }
  return {
    codec,
    rows: int('rows', values.rows, 1_000_000),
    commits: int('commits', values.commits, 10),
    days: int('days', values.days, 30),
    repeat: int('repeat', values.repeat, 3),
    dir: values.dir,
    keep: values.keep ?? false,
    threads: values.threads ? int('threads', values.threads, 1) : undefined,
    format,
  };
}

let quiet = false;

function progress(msg: string): void {
  if (quiet) return;
  process.stderr.write(`[bench lake ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

/** The best of `repeat` runs of each, alternating a and b (the first run also warms the page cache). */
async function bestOfPair<A, B>(
  repeat: number,
  a: () => Promise<A>,
  b: () => Promise<B>,
): Promise<[{ ms: number; value: A }, { ms: number; value: B }]> {
  let ra: { ms: number; value: A } | undefined;
  let rb: { ms: number; value: B } | undefined;
  for (let i = 0; i < repeat; i++) {
    const x = await timed(a);
    if (!ra || x.ms < ra.ms) ra = x;
    const y = await timed(b);
    if (!rb || y.ms < rb.ms) rb = y;
  }
  return [ra!, rb!];
}

/**
 * NetworkListenIP4-like rows in time order over `days` days from 2024-03-01, chunk = commit.
 * Cardinalities follow FDR: ~2,000 hosts (aid, aip, ComputerName), one customer (cid), a
 * unique event id, listening ports mostly well-known, a few dozen images, thousands of
 * command lines, process ids above 2^32.
 */
export function rowsSql(o: Pick<Options, 'rows' | 'commits' | 'days'>): string {
  // integer steps: BIGINT arithmetic (HUGEINT would triple the build time)
  const stepMicros = Math.floor((o.days * 86_400_000_000) / o.rows);
  const chunk = Math.ceil(o.rows / o.commits);
  return `
    WITH img AS (
      SELECT idx, image, sha256(image) AS sha FROM (VALUES
        (0, 'C:\\Windows\\System32\\svchost.exe'), (1, 'C:\\Windows\\System32\\lsass.exe'),
        (2, 'C:\\Windows\\System32\\spoolsv.exe'), (3, 'C:\\Program Files\\Microsoft SQL Server\\sqlservr.exe'),
        (4, 'C:\\Windows\\System32\\wininit.exe'), (5, 'C:\\Program Files\\Apache\\bin\\httpd.exe'),
        (6, '/usr/sbin/sshd'), (7, '/usr/sbin/nginx'), (8, '/usr/lib/systemd/systemd-resolved'),
        (9, '/usr/bin/dockerd'), (10, 'C:\\Program Files\\nodejs\\node.exe'),
        (11, 'C:\\Windows\\System32\\dns.exe'), (12, '/usr/sbin/rpcbind'), (13, '/usr/sbin/cupsd'),
        (14, 'C:\\Windows\\System32\\TermService.exe'), (15, '/opt/splunk/bin/splunkd'),
        (16, 'C:\\Program Files\\Java\\bin\\java.exe'), (17, '/usr/bin/python3'),
        (18, 'C:\\Windows\\System32\\WmiPrvSE.exe'), (19, '/usr/local/bin/redis-server')
      ) images(idx, image)
    ), base AS (
      SELECT i, h, r, ((h + r % 3) % 20)::INTEGER AS ii,
        TIMESTAMP '2024-03-01' + to_microseconds(i * ${stepMicros}) AS ts
      FROM (SELECT i, (hash(i * 7919) % 2000)::INTEGER AS h, hash(i) AS r FROM range(${o.rows}) t(i))
    )
    SELECT
      (i // ${chunk})::INTEGER AS chunk,
      md5('aid-' || h) AS aid,
      'a1b2c3d4e5f60718293a4b5c6d7e8f90' AS cid,
      ((h % 200) + 11)::VARCHAR || '.' || ((h * 13) % 250)::VARCHAR || '.' || ((h * 7) % 250)::VARCHAR
        || '.' || ((h * 3) % 250 + 1)::VARCHAR AS aip,
      md5('event-' || i) AS id,
      'NetworkListenIP4' AS event_simpleName,
      ts AS "timestamp",
      ts::DATE AS event_date,
      CASE WHEN r % 10 < 7 THEN [22, 80, 443, 445, 3389, 135, 139, 5985][(r % 8)::INTEGER + 1]
           ELSE 49152 + (r % 16383)::INTEGER END AS LocalPort,
      '10.' || (h // 250)::VARCHAR || '.' || (h % 250)::VARCHAR || '.' || ((h * 11) % 250 + 1)::VARCHAR
        AS LocalAddressIP4,
      CASE WHEN r % 4 = 0 THEN '0.0.0.0'
           ELSE ((r // 7) % 223 + 1)::VARCHAR || '.' || ((r // 11) % 256)::VARCHAR || '.'
             || ((r // 13) % 256)::VARCHAR || '.' || ((r // 17) % 256)::VARCHAR END AS RemoteAddressIP4,
      CASE WHEN r % 4 = 0 THEN 0 ELSE 1024 + ((r // 19) % 64000)::INTEGER END AS RemotePort,
      CASE WHEN r % 5 = 0 THEN 17 ELSE 6 END AS Protocol,
      (4294967296 + (r // 23) % 1099511627776)::BIGINT AS ContextProcessId,
      ((r // 29) % 100000)::BIGINT AS ContextThreadId,
      ts - to_milliseconds((r % 900)::BIGINT) AS ContextTimeStamp,
      'WS-' || lpad(h::VARCHAR, 5, '0') AS ComputerName,
      'user' || (h % 500)::VARCHAR AS UserName,
      image AS ImageFileName,
      '"' || image || '" -k netsvcs -p -s svc' || ((r // 31) % 5000)::VARCHAR AS CommandLine,
      sha AS SHA256HashData,
      '1007.3.0017' || (300 + h % 12)::VARCHAR || '.1' AS ConfigBuild
    FROM base JOIN img ON img.idx = base.ii
    ORDER BY i`;
}

interface Measure {
  ms: number;
  rowsPerSec: number;
}

export interface LakeBenchResult {
  rows: number;
  codec: string;
  commits: number;
  partitions: number;
  filteredRows: number;
  talon: { append: Measure; fullScan: Measure; filteredScan: Measure; files: number; bytes: number };
  plain: { append: Measure; fullScan: Measure; filteredScan: Measure; files: number; bytes: number };
  ratio: { append: number; fullScan: number; filteredScan: number };
  appendTarget: number;
  appendTargetMet: boolean;
}

function measure(rows: number, ms: number): Measure {
  return { ms: Math.round(ms * 10) / 10, rowsPerSec: Math.round(rows / (ms / 1000)) };
}

async function folderStats(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith('.parquet')) {
      files++;
      bytes += (await fs.stat(path.join(e.parentPath, e.name))).size;
    }
  }
  return { files, bytes };
}

export async function runLakeBench(o: Options): Promise<LakeBenchResult> {
  quiet = o.quiet ?? false;
  const work = o.dir ? path.resolve(o.dir) : await fs.mkdtemp(path.join(os.tmpdir(), 'talon-bench-lake-'));
  const plainDir = path.join(work, 'plain');
  const lakeDir = path.join(work, 'lake');
  await fs.rm(plainDir, { recursive: true, force: true });
  await fs.rm(lakeDir, { recursive: true, force: true });
  await fs.mkdir(plainDir, { recursive: true });
  const db = await Db.open({ threads: o.threads });
  try {
    progress(`building ${o.rows.toLocaleString('en-US')} FDR-shaped rows in DuckDB`);
    await db.run(`CREATE TEMP TABLE bench_rows AS ${rowsSql(o)}`);
    const chunk = (k: number) => `SELECT * EXCLUDE (chunk) FROM bench_rows WHERE chunk = ${k}`;
    const [{ day }] = await db.all<{ day: string }>(
      `SELECT strftime(event_date, '%Y-%m-%d') AS day FROM bench_rows GROUP BY event_date ORDER BY count(*) DESC, event_date LIMIT 1`,
    );
    const filter = `event_date = DATE ${literal(day!)}`;
    const [{ n: filteredRows }] = await db.all<{ n: bigint }>(
      `SELECT count(*) AS n FROM bench_rows WHERE ${filter}`,
    );
    const [{ n: partitions }] = await db.all<{ n: bigint }>(
      `SELECT count(DISTINCT event_date) AS n FROM bench_rows`,
    );

    // Plain Parquet: the same chunks, partition layout and codec, written by DuckDB alone.
    const plainFiles = path.join(plainDir, '**', '*.parquet').replaceAll('\\', '/');
    const plainCopy = (k: number) =>
      db.run(
        `COPY (${chunk(k)}) TO ${literal(plainDir)} (FORMAT parquet, COMPRESSION ${o.codec}, ` +
          `PARTITION_BY (event_date), APPEND true, FILENAME_PATTERN ${literal(`chunk${k}-{uuid}`)})`,
      );
    const plainScan = (where: string) =>
      db.all<{ n: bigint; s: bigint }>(
        `SELECT count(*) AS n, sum(LocalPort) AS s FROM read_parquet(${literal(plainFiles)}, hive_partitioning = true) ${where}`,
      );

    // Talon: a Delta table, one commit per chunk.
    const lake = await Lake.open(lakeDir, { db });
    const table = await lake.createTable('NetworkListenIP4', {
      partitionColumns: ['event_date'],
      properties: { 'delta.parquet.compression.codec': o.codec },
    });
    const talonScan = async (f?: string) => {
      const snap = await table.snapshot();
      const from = await snap.scan(f);
      return db.all<{ n: bigint; s: bigint }>(
        `SELECT count(*) AS n, sum(LocalPort) AS s FROM ${from} ${f ? `WHERE ${f}` : ''}`,
      );
    };

    // Interleaved (plain chunk k, Talon commit k, …) so a noisy machine slows both sides alike.
    progress(`append ${o.commits} chunks (${o.codec}): plain COPY and Talon commit, interleaved`);
    let plainAppendMs = 0;
    let talonAppendMs = 0;
    for (let k = 0; k < o.commits; k++) {
      plainAppendMs += (await timed(() => plainCopy(k))).ms;
      talonAppendMs += (await timed(() => table.append(chunk(k)))).ms;
      progress(
        `  chunk ${k + 1}/${o.commits}: plain ${Math.round(plainAppendMs)} ms, Talon ${Math.round(talonAppendMs)} ms so far`,
      );
    }

    progress(`scans (best of ${o.repeat}, interleaved): full, then ${filter}`);
    const [pFull, tFull] = await bestOfPair(
      o.repeat,
      () => plainScan(''),
      () => talonScan(),
    );
    const [pFiltered, tFiltered] = await bestOfPair(
      o.repeat,
      () => plainScan(`WHERE ${filter}`),
      () => talonScan(filter),
    );

    // The benchmark is only meaningful if both sides read the same rows.
    const same = (a: { n: bigint; s: bigint }[], b: { n: bigint; s: bigint }[], what: string) => {
      if (a[0]!.n !== b[0]!.n || a[0]!.s !== b[0]!.s) {
        throw new Error(
          `${what}: Talon read ${a[0]!.n} rows (sum ${a[0]!.s}), plain ${b[0]!.n} (sum ${b[0]!.s})`,
        );
      }
    };
    same(tFull.value, pFull.value, 'full scan');
    same(tFiltered.value, pFiltered.value, 'filtered scan');
    if (Number(tFull.value[0]!.n) !== o.rows)
      throw new Error(`full scan read ${tFull.value[0]!.n} of ${o.rows} rows`);

    const active = (await table.snapshot()).files;
    const talonStats = { files: active.length, bytes: active.reduce((sum, f) => sum + f.size, 0) };
    const plainStats = await folderStats(plainDir);
    const talon = {
      append: measure(o.rows, talonAppendMs),
      fullScan: measure(o.rows, tFull.ms),
      filteredScan: measure(o.rows, tFiltered.ms),
      ...talonStats,
    };
    const plain = {
      append: measure(o.rows, plainAppendMs),
      fullScan: measure(o.rows, pFull.ms),
      filteredScan: measure(o.rows, pFiltered.ms),
      ...plainStats,
    };
    const r = (a: Measure, b: Measure) => Math.round((a.rowsPerSec / b.rowsPerSec) * 100) / 100;
    const ratio = {
      append: r(talon.append, plain.append),
      fullScan: r(talon.fullScan, plain.fullScan),
      filteredScan: r(talon.filteredScan, plain.filteredScan),
    };
    return {
      rows: o.rows,
      codec: o.codec,
      commits: o.commits,
      partitions: Number(partitions),
      filteredRows: Number(filteredRows),
      talon,
      plain,
      ratio,
      appendTarget: APPEND_TARGET,
      appendTargetMet: ratio.append >= APPEND_TARGET,
    };
  } finally {
    db.close();
    if (!o.dir && !o.keep) await fs.rm(work, { recursive: true, force: true });
    else progress(`kept ${work}`);
  }
}

function report(res: LakeBenchResult): string {
  const fmt = (n: number) => n.toLocaleString('en-US');
  const line = (what: string, t: Measure, p: Measure, ratio: number) =>
    `${what.padEnd(15)} ${fmt(t.rowsPerSec).padStart(13)} ${fmt(p.rowsPerSec).padStart(13)} ${ratio.toFixed(2).padStart(8)}` +
    `   (${fmt(t.ms)} ms vs ${fmt(p.ms)} ms)`;
  return [
    `lake benchmark: ${fmt(res.rows)} rows, ${res.commits} commits, ${res.partitions} event_date partitions, ${res.codec}; ` +
      `filtered scan = 1 day (${fmt(res.filteredRows)} rows)`,
    `${'rows/s'.padEnd(15)} ${'Talon'.padStart(13)} ${'plain Parquet'.padStart(13)} ${'ratio'.padStart(8)}`,
    line('append', res.talon.append, res.plain.append, res.ratio.append),
    line('full scan', res.talon.fullScan, res.plain.fullScan, res.ratio.fullScan),
    line('filtered scan', res.talon.filteredScan, res.plain.filteredScan, res.ratio.filteredScan),
    `files: Talon ${res.talon.files} (${fmt(res.talon.bytes)} B), plain ${res.plain.files} (${fmt(res.plain.bytes)} B)`,
    `target (issue #2): append ≥ ${res.appendTarget.toFixed(1)}× plain Parquet — ` +
      `${res.appendTargetMet ? 'met' : 'NOT met'} (${res.ratio.append.toFixed(2)}×)`,
  ].join('\n');
}

export const benchmark: Benchmark = {
  description: 'Delta append + full/filtered scan vs DuckDB plain Parquet (--rows N for a quick run)',
  async run(args: string[]) {
    const o = parse(args);
    if (!o) {
      process.stdout.write(HELP);
      return;
    }
    const res = await runLakeBench(o);
    process.stdout.write(o.format === 'json' ? JSON.stringify(res, null, 2) + '\n' : report(res) + '\n');
  },
};
