/**
 * `npm run bench -- ingest [--events N] [--dir DIR] [--keep] [--format json]`
 *
 * Generates N FDR events (gzip parts, default 1,000,000) with the generator, ingests them with
 * the full pipeline (decode, normalize, enrich, Delta commits) in a child process — so its
 * peak RSS is the ingest's alone — and, in the same run, times DuckDB alone doing
 * `COPY (SELECT * FROM read_ndjson(<the same files>)) TO … (FORMAT parquet, PARTITION_BY
 * event_simpleName)`. Prints events/s, MB/s, peak RSS and the ratio DuckDB time / Talon
 * time (1.0 = as fast as the bare copy). Targets: ≥ 150,000 events/s, ratio ≥ 0.7,
 * peak RSS < 1.5 GB.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { Benchmark } from './main.js';

interface Options {
  events: number;
  dir?: string;
  keep: boolean;
  format: 'text' | 'json';
  batchEvents?: number;
}

function parseArgs(args: string[]): Options {
  const o: Options = { events: 1_000_000, keep: false, format: 'text' };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = (): string => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a}: value missing`);
      return v;
    };
    if (a === '--events') o.events = Number(next());
    else if (a === '--dir') o.dir = next();
    else if (a === '--keep') o.keep = true;
    else if (a === '--format') o.format = next() === 'json' ? 'json' : 'text';
    else if (a === '--batch-events') o.batchEvents = Number(next());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'npm run bench -- ingest [--events N] [--dir DIR] [--keep] [--batch-events N] [--format json]\n',
      );
      process.exit(0);
    } else throw new Error(`unknown flag ${a}`);
  }
  if (!Number.isInteger(o.events) || o.events < 1) throw new Error('--events: expected a positive integer');
  return o;
}

async function listFiles(dir: string, out: string[] = []): Promise<string[]> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await listFiles(p, out);
    else if (e.name.endsWith('.gz')) out.push(p);
  }
  return out.sort();
}

interface ChildResult {
  summary: { files: number; events: number; quarantined: number; bytes: number; seconds: number };
  maxRssBytes: number;
  /** user + system CPU seconds of the ingest process (DuckDB threads included) */
  cpuSeconds: number;
}

/** Child mode: ingest `gen` into `lake` and print the summary and peak RSS as JSON. */
async function child(gen: string, lakeDir: string, batchEvents?: number): Promise<void> {
  const { Lake } = await import('../lake/index.js');
  const { ingest } = await import('../ingest/pipeline.js');
  const { FilesSource } = await import('../sources/files.js');
  const lake = await Lake.open(lakeDir);
  try {
    const summary = await ingest(lake, new FilesSource([gen]), { progress: false, batchEvents });
    const u = process.resourceUsage();
    const result: ChildResult = {
      summary,
      maxRssBytes: u.maxRSS * 1024,
      cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    lake.close();
  }
}

function runChild(gen: string, lakeDir: string, batchEvents?: number): Promise<ChildResult> {
  const self = fileURLToPath(import.meta.url);
  const args = [self, '--child', gen, lakeDir, ...(batchEvents ? [String(batchEvents)] : [])];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TALON_LOG: 'warn' },
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) reject(new Error(`ingest child exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!) as ChildResult);
    });
  });
}

export async function run(args: string[]): Promise<void> {
  const o = parseArgs(args);
  const root = o.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'talon-bench-ingest-')));
  const gen = path.join(root, 'fdr');
  const say = (s: string): void => {
    if (o.format === 'text') process.stderr.write(s + '\n');
  };
  try {
    const { generateFdr } = await import('../generate/index.js');
    say(`generating ${o.events.toLocaleString('en-US')} events into ${gen} …`);
    const g = await generateFdr({ out: gen, events: o.events, force: true, progress: false });
    const files = await listFiles(path.join(gen, 'data'));
    let uncompressed = g.uncompressedBytes;
    let compressed = 0;
    for (const f of files) compressed += (await stat(f)).size;

    say('ingesting with talon …');
    await rm(path.join(root, 'lake'), { recursive: true, force: true });
    const t = await runChild(gen, path.join(root, 'lake'), o.batchEvents);

    say('copying with DuckDB alone …');
    const { Db, literal } = await import('../sql/duckdb.js');
    const db = await Db.open();
    const outDir = path.join(root, 'duckdb-copy');
    await rm(outDir, { recursive: true, force: true });
    const list = `[${files.map(literal).join(', ')}]`;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await db.run(
      `COPY (SELECT * FROM read_ndjson(${list})) TO ${literal(outDir)} (FORMAT parquet, PARTITION_BY event_simpleName)`,
    );
    const duckSeconds = (performance.now() - t0) / 1000;
    const duckCpu = process.cpuUsage(cpu0);
    const duckCpuSeconds = (duckCpu.user + duckCpu.system) / 1e6;
    db.close();
    if (!uncompressed) uncompressed = compressed;

    const s = t.summary;
    const result = {
      events: s.events,
      files: s.files,
      quarantined: s.quarantined,
      seconds: round(s.seconds),
      events_per_second: Math.round(s.events / s.seconds),
      mb_per_second_compressed: round(s.bytes / 1e6 / s.seconds),
      mb_per_second_uncompressed: round(uncompressed / 1e6 / s.seconds),
      peak_rss_mb: Math.round(t.maxRssBytes / 1e6),
      duckdb_copy_seconds: round(duckSeconds),
      ratio_duckdb_over_talon: round(duckSeconds / s.seconds),
      // wall time depends on what else the machine runs; CPU seconds much less so
      talon_cpu_seconds: round(t.cpuSeconds),
      duckdb_cpu_seconds: round(duckCpuSeconds),
      ratio_cpu_duckdb_over_talon: round(duckCpuSeconds / t.cpuSeconds),
      events_per_cpu_second: Math.round(s.events / t.cpuSeconds),
      targets: { events_per_second: 150_000, ratio: 0.7, peak_rss_mb: 1500 },
      cpus: os.cpus().length,
      loadavg: os.loadavg().map(round),
    };
    if (o.format === 'json') process.stdout.write(JSON.stringify(result) + '\n');
    else {
      process.stdout.write(
        [
          `talon ingest: ${s.events.toLocaleString('en-US')} events (${s.files} files, ${s.quarantined} quarantined) in ${result.seconds} s`,
          `  ${result.events_per_second.toLocaleString('en-US')} events/s   ${result.mb_per_second_compressed} MB/s gz   ${result.mb_per_second_uncompressed} MB/s ndjson   peak RSS ${result.peak_rss_mb} MB`,
          `duckdb alone (read_ndjson → parquet PARTITION_BY event_simpleName): ${result.duckdb_copy_seconds} s`,
          `  ratio duckdb/talon ${result.ratio_duckdb_over_talon} (target ≥ 0.7)   load average ${result.loadavg.join(' ')}`,
          `CPU seconds: talon ${result.talon_cpu_seconds} (${result.events_per_cpu_second.toLocaleString('en-US')} events per CPU second), ` +
            `duckdb ${result.duckdb_cpu_seconds}, ratio ${result.ratio_cpu_duckdb_over_talon}`,
        ].join('\n') + '\n',
      );
    }
  } finally {
    if (!o.keep && !o.dir) await rm(root, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export const benchmark: Benchmark = {
  description:
    'generate N FDR events, ingest them (events/s, MB/s, peak RSS) vs a bare DuckDB read_ndjson→parquet copy',
  run,
};

if (process.argv[2] === '--child' && process.argv[1] === fileURLToPath(import.meta.url)) {
  const batch = process.argv[5] ? Number(process.argv[5]) : undefined;
  child(process.argv[3], process.argv[4], batch).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
