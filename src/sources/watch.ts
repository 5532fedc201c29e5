/**
 * `talon ingest --watch PATH…`: keeps running and ingests files as they appear under the
 * given folders (recursively) or at the given file paths.
 *
 * A file is taken once it is complete, by one of two rules:
 * - FDR manifest: a `manifests/<uuid>.json` (the SQS body shape — see `manifest.ts`, as the
 *   generator and an S3 sync of an FDR bucket lay it out) lists its files by key, size and
 *   MD5. Keys resolve against the folder holding `manifests/` (the bucket root). The batch is
 *   taken as a whole as soon as every listed file exists with its listed size, with
 *   `expectedSize`/`expectedMd5` set so the pipeline verifies the bytes. Files a manifest
 *   lists are never taken by the stability rule. If the batch is still incomplete
 *   `incompleteManifestMs` after the manifest appeared, the files present (stable, any size)
 *   are taken anyway — the pipeline quarantines a size/MD5 mismatch — and the rest as they come.
 * - Stable size: any other data file whose size and mtime stayed the same for `stableMs`.
 *
 * Data files: `.gz`, `.json`, `.ndjson`, `.jsonl`, `.log`, and files without an extension
 * inside FDR folders (`data/`, `fdrv2/`). Ignored: dot files, temp/partial names (`*.tmp`,
 * `*.part`, `*.partial`, `*~`), everything under `manifests/` (read as manifests), empty
 * files (wait for content), and the generator's `ground-truth.json`.
 *
 * Discovery: a rescan of the tree every `rescanMs` (the source of truth — `fs.watch` misses
 * events, and its recursive mode is unreliable on Linux), woken early by non-recursive
 * `fs.watch` on the folders seen (up to `maxWatchedDirs`) and when a pending file's
 * stability period ends. Folders whose mtime is unchanged and whose files were all taken
 * are not re-listed, so a long-running watch over a growing archive stays cheap.
 *
 * Identity: `SourceFile.id` = `file:<abs path>#<size>-<mtimeMs>` (the same key as the plain
 * file source), never yielded twice by one process; `ack()` only adds to an in-memory done
 * set — exactly-once across restarts is the pipeline's ingest log. A file rewritten with
 * other content gets a new id and is taken again: watched files are expected to be written
 * once (FDR batches), not appended to.
 *
 * Grouping: every batch one scan found ready but the last is yielded with `moreReady`, so
 * the pipeline commits all of them together (up to its batch limit).
 *
 * Unreadable files (`SourceFile.readFailed`), one at a time — the rest of the batch goes on:
 * - gone, or no longer a regular file (removed or replaced between the scan and the read):
 *   skipped and logged; if a file appears there again it is taken as any new file.
 * - still there but failing (EACCES, EIO, too many open files): skipped and taken again by a
 *   later scan, after `readRetryMs` doubling per attempt; after `readAttempts` failures it is
 *   quarantined as `read_error` (and counts as ingested), as the plain file source does.
 */
import { createReadStream, watch as fsWatch, type FSWatcher, type Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { TalonConfig } from '../config/config.js';
import type { FdrSource, SourceBatch, SourceFile } from './source.js';
import {
  defaultSourceLog,
  parseFdrManifest,
  type FdrManifest,
  type FdrManifestFile,
  type SourceLog,
} from './manifest.js';

export interface WatchSourceOptions {
  /** Folders (watched recursively) and/or single files. */
  paths: string[];
  /** A file is complete when its size and mtime stayed the same this long (config ingest.watch.stable_ms). */
  stableMs?: number;
  /** Full rescan period. */
  rescanMs?: number;
  /** After this long, an incomplete manifest batch is taken with the files present. */
  incompleteManifestMs?: number;
  /** Files per batch for stability-rule files (a manifest batch is always whole). */
  maxFilesPerBatch?: number;
  /** Folders given an `fs.watch` (inotify) for prompt wake-ups; the rescan covers the rest. */
  maxWatchedDirs?: number;
  /** Reads of a file that exists but fails (EACCES, EIO) before it is quarantined as `read_error`. */
  readAttempts?: number;
  /** Wait before the second read attempt of a failing file; doubled per attempt. */
  readRetryMs?: number;
  /** How a taken file's bytes are opened (default: a read stream); tests put faults here. */
  openFile?: (absPath: string) => Promise<Readable>;
  log?: SourceLog;
}

export const WATCH_DEFAULTS = {
  stableMs: 2000,
  rescanMs: 1000,
  incompleteManifestMs: 10 * 60_000,
  maxFilesPerBatch: 64,
  maxWatchedDirs: 256,
  readAttempts: 5,
  readRetryMs: 1000,
} as const;

/** WatchSource options from the `ingest.watch` config section; `paths` from the command line win. */
export function watchOptionsFromConfig(
  cfg: TalonConfig['ingest']['watch'],
  overrides: Partial<WatchSourceOptions> = {},
): WatchSourceOptions {
  const paths = overrides.paths?.length ? overrides.paths : cfg.paths;
  if (!paths.length) throw new Error('ingest --watch needs a PATH (or ingest.watch.paths in the config)');
  return {
    stableMs: cfg.stable_ms,
    readAttempts: cfg.read_attempts,
    readRetryMs: cfg.read_retry_ms,
    ...overrides,
    paths,
  };
}

/** The exactly-once key of a local file: its path plus what pins its content. */
export function localFileId(absPath: string, st: Pick<Stats, 'size' | 'mtimeMs'>): string {
  return `file:${absPath}#${st.size}-${Math.trunc(st.mtimeMs)}`;
}

const MIN_SCAN_INTERVAL_MS = 100;
const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const DATA_EXTENSIONS = new Set(['.gz', '.json', '.ndjson', '.jsonl', '.log']);
/** Folders whose extension-less files are FDR data (`data/<uuid>/part-00000`). */
const FDR_DATA_DIRS = new Set(['data', 'fdrv2']);
/** Not event data even though `.json`: the generator's answer key. */
const IGNORED_NAMES = new Set(['ground-truth.json']);

/** Temp/partial names writers use before the final rename. */
export function isTempName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('~') || /\.(tmp|temp|part|partial|crdownload)$/i.test(name);
}

/**
 * Whether a file under a watched folder is event data. `rel` is relative to the watched
 * folder, '/'-separated.
 */
export function isWatchedDataFile(rel: string): boolean {
  const segments = rel.split('/');
  const name = segments[segments.length - 1];
  if (isTempName(name) || IGNORED_NAMES.has(name)) return false;
  if (segments.slice(0, -1).includes('manifests')) return false;
  const ext = path.extname(name).toLowerCase();
  if (DATA_EXTENSIONS.has(ext)) return true;
  return ext === '' && segments.slice(0, -1).some((s) => FDR_DATA_DIRS.has(s));
}

function isManifestPath(abs: string): boolean {
  return (
    path.basename(path.dirname(abs)) === 'manifests' &&
    abs.toLowerCase().endsWith('.json') &&
    !isTempName(path.basename(abs))
  );
}

interface Observation {
  size: number;
  mtimeMs: number;
  /** When this (size, mtime) was first seen. */
  since: number;
}

interface PendingManifest {
  manifest: FdrManifest;
  firstSeen: number;
  /** abs data path → listed entry, for the files not yet taken. */
  open: Map<string, FdrManifestFile>;
}

interface DirState {
  mtimeMs: number;
  /** Every file in it was taken, ignored or is a finished manifest: skip listing while unchanged. */
  settled: boolean;
  subdirs: string[];
}

interface ReadyFile {
  abs: string;
  size: number;
  mtimeMs: number;
  expected?: FdrManifestFile;
}

interface ReadFailures {
  attempts: number;
  /** Not taken again before this time (ms). */
  notBefore: number;
}

const defaultOpenFile = async (abs: string): Promise<Readable> =>
  createReadStream(abs, { highWaterMark: 256 * 1024 });

export class WatchSource implements FdrSource {
  readonly kind = 'watch';
  private readonly roots: string[];
  private readonly stableMs: number;
  private readonly rescanMs: number;
  private readonly incompleteManifestMs: number;
  private readonly maxFilesPerBatch: number;
  private readonly maxWatchedDirs: number;
  private readonly readAttempts: number;
  private readonly readRetryMs: number;
  private readonly openFile: (absPath: string) => Promise<Readable>;
  private readonly log: SourceLog;
  /** abs path → failed reads of a file that is still there, while it waits to be retried. */
  private readonly readFailures = new Map<string, ReadFailures>();

  private readonly observed = new Map<string, Observation>();
  /** Ids handed to the pipeline (and not nacked): never yielded again by this process. */
  private readonly yielded = new Set<string>();
  /** Ids the pipeline acknowledged. */
  readonly done = new Set<string>();
  /** Manifest path → its state; `null` once all its files were taken. */
  private readonly manifests = new Map<string, PendingManifest | null>();
  /** Manifest path → "size-mtime" of a version that failed to parse and stayed that way. */
  private readonly badManifests = new Map<string, string>();
  /** abs data path → manifest path listing it. */
  private readonly claimed = new Map<string, string>();
  private readonly dirs = new Map<string, DirState>();
  private readonly watchers = new Map<string, FSWatcher>();
  private wake: (() => void) | undefined;
  private nextWakeAt = Infinity;
  private lastScanAt = 0;
  private closed = false;

  constructor(opts: WatchSourceOptions) {
    if (!opts.paths.length) throw new Error('watch: at least one path is required');
    this.roots = opts.paths.map((p) => path.resolve(p));
    this.stableMs = opts.stableMs ?? WATCH_DEFAULTS.stableMs;
    this.rescanMs = opts.rescanMs ?? Math.min(WATCH_DEFAULTS.rescanMs, Math.max(50, this.stableMs / 2));
    this.incompleteManifestMs = opts.incompleteManifestMs ?? WATCH_DEFAULTS.incompleteManifestMs;
    this.maxFilesPerBatch = opts.maxFilesPerBatch ?? WATCH_DEFAULTS.maxFilesPerBatch;
    this.maxWatchedDirs = opts.maxWatchedDirs ?? WATCH_DEFAULTS.maxWatchedDirs;
    this.readAttempts = opts.readAttempts ?? WATCH_DEFAULTS.readAttempts;
    this.readRetryMs = opts.readRetryMs ?? WATCH_DEFAULTS.readRetryMs;
    this.openFile = opts.openFile ?? defaultOpenFile;
    this.log = opts.log ?? defaultSourceLog;
  }

  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    const queue: SourceBatch[] = [];
    const onAbort = () => this.wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted && !this.closed) {
        const next = queue.shift();
        if (next) {
          next.moreReady = queue.length > 0;
          yield next;
          continue;
        }
        // A burst of fs.watch events (a file written in many pieces) must not become a
        // burst of full scans.
        const sinceLast = Date.now() - this.lastScanAt;
        if (sinceLast < MIN_SCAN_INTERVAL_MS) await delay(MIN_SCAN_INTERVAL_MS - sinceLast);
        if (signal.aborted || this.closed) break;
        this.nextWakeAt = Infinity;
        this.lastScanAt = Date.now();
        queue.push(...(await this.scan()));
        if (queue.length === 0) await this.sleep();
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.closeWatchers();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.closeWatchers();
    this.wake?.();
  }

  // ---- scanning ----

  /** One pass over every root; returns the batches that became ready. */
  private async scan(): Promise<SourceBatch[]> {
    const now = Date.now();
    const seen = new Set<string>();
    // Sets: overlapping roots (a folder and its subfolder) list a file twice.
    const manifestPaths = new Set<string>();
    const candidates = new Set<string>();
    for (const root of this.roots) {
      let st: Stats;
      try {
        st = await stat(root);
      } catch {
        continue; // not there yet; it may appear
      }
      if (st.isDirectory()) {
        await this.walk(root, root, seen, manifestPaths, candidates);
      } else if (st.isFile()) {
        if (isManifestPath(root)) manifestPaths.add(root);
        else {
          seen.add(root);
          candidates.add(root);
        }
      }
    }
    for (const p of this.observed.keys()) if (!seen.has(p) && !this.claimed.has(p)) this.observed.delete(p);

    for (const m of manifestPaths) await this.loadManifest(m, now);
    const batches: SourceBatch[] = [];
    for (const [mpath, pending] of this.manifests) {
      if (!pending) continue;
      const b = await this.manifestBatch(mpath, pending, now);
      if (b) batches.push(b);
    }

    const ready: ReadyFile[] = [];
    for (const abs of candidates) {
      if (this.claimed.has(abs)) continue;
      const r = await this.stableFile(abs, now);
      if (r) ready.push(r);
    }
    for (let i = 0; i < ready.length; i += this.maxFilesPerBatch) {
      const group = ready.slice(i, i + this.maxFilesPerBatch);
      const id = `watch:${group[0].abs}` + (group.length > 1 ? ` (+${group.length - 1} more)` : '');
      batches.push(this.batchOf(id, group));
    }
    return batches;
  }

  private async walk(
    root: string,
    dir: string,
    seen: Set<string>,
    manifestPaths: Set<string>,
    candidates: Set<string>,
  ): Promise<void> {
    let dirStat: Stats;
    try {
      dirStat = await stat(dir);
    } catch {
      this.forgetDir(dir);
      return;
    }
    const cached = this.dirs.get(dir);
    if (cached && cached.settled && cached.mtimeMs === dirStat.mtimeMs) {
      for (const sub of cached.subdirs) await this.walk(root, sub, seen, manifestPaths, candidates);
      return;
    }
    this.watchDir(dir);
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      this.forgetDir(dir);
      return;
    }
    const subdirs: string[] = [];
    let settled = true;
    for (const e of entries) {
      const abs = path.join(dir, e.name);
      if (e.name.startsWith('.')) continue;
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        // Follow links to files; not to folders (loops).
        try {
          isFile = (await stat(abs)).isFile();
        } catch {
          continue;
        }
        isDir = false;
      }
      if (isDir) {
        subdirs.push(abs);
        continue;
      }
      if (!isFile) continue;
      if (isManifestPath(abs)) {
        manifestPaths.add(abs);
        if (this.manifests.get(abs) !== null) settled = false;
        continue;
      }
      const rel = path.relative(root, abs).split(path.sep).join('/');
      if (!isWatchedDataFile(rel)) continue;
      seen.add(abs);
      candidates.add(abs);
      if (!this.isTaken(abs)) settled = false;
    }
    this.dirs.set(dir, { mtimeMs: dirStat.mtimeMs, settled, subdirs });
    for (const sub of subdirs) await this.walk(root, sub, seen, manifestPaths, candidates);
  }

  /** Taken = its current version was yielded (or acked) — judged on the last observation. */
  private isTaken(abs: string): boolean {
    const o = this.observed.get(abs);
    return o !== undefined && this.yielded.has(localFileId(abs, o));
  }

  private async loadManifest(mpath: string, now: number): Promise<void> {
    if (this.manifests.has(mpath)) return;
    let st: Stats;
    let text: string;
    try {
      st = await stat(mpath);
      text = await readFile(mpath, 'utf8');
    } catch {
      return;
    }
    const version = `${st.size}-${st.mtimeMs}`;
    if (this.badManifests.get(mpath) === version) return;
    let manifest: FdrManifest;
    try {
      manifest = parseFdrManifest(text);
    } catch (err) {
      // Possibly still being written: give up on this version only once it is stable.
      if (now - st.mtimeMs >= this.stableMs) {
        this.badManifests.set(mpath, version);
        this.log('error', 'watch: ignoring invalid FDR manifest', { manifest: mpath, reason: String(err) });
      }
      return;
    }
    const bucketRoot = path.dirname(path.dirname(mpath));
    const open = new Map<string, FdrManifestFile>();
    for (const f of manifest.files) {
      const abs = path.resolve(bucketRoot, f.path);
      if (!abs.startsWith(bucketRoot + path.sep)) {
        this.badManifests.set(mpath, version);
        this.log('error', 'watch: FDR manifest lists a file outside its folder, ignored', {
          manifest: mpath,
          file: f.path,
        });
        return;
      }
      open.set(abs, f);
    }
    this.badManifests.delete(mpath);
    this.manifests.set(mpath, { manifest, firstSeen: now, open });
    for (const abs of open.keys()) this.claimed.set(abs, mpath);
    this.invalidateDirsOf([...open.keys()]);
  }

  private async manifestBatch(
    mpath: string,
    pending: PendingManifest,
    now: number,
  ): Promise<SourceBatch | undefined> {
    const overdue = now - pending.firstSeen >= this.incompleteManifestMs;
    const ready: ReadyFile[] = [];
    let complete = true;
    for (const [abs, expected] of pending.open) {
      let st: Stats;
      try {
        st = await stat(abs);
      } catch {
        complete = false;
        this.wakeAt(pending.firstSeen + this.incompleteManifestMs);
        continue;
      }
      const id = localFileId(abs, st);
      if (this.yielded.has(id)) {
        // Taken before the manifest appeared (stability rule): it is in.
        pending.open.delete(abs);
        continue;
      }
      const stable = this.observe(abs, st, now);
      if (this.retryPending(abs, now)) {
        complete = false;
        continue;
      }
      if (st.size === expected.size || (overdue && stable)) {
        ready.push({ abs, size: st.size, mtimeMs: st.mtimeMs, expected });
      } else {
        complete = false;
        this.wakeAt(pending.firstSeen + this.incompleteManifestMs);
      }
    }
    if (pending.open.size === 0) {
      this.manifests.set(mpath, null);
      return undefined;
    }
    if (!complete && !overdue) return undefined;
    if (ready.length === 0) return undefined;
    if (!complete) {
      this.log('warn', 'watch: FDR batch still incomplete, taking the files present', {
        manifest: mpath,
        taking: ready.length,
        missing: pending.open.size - ready.length,
      });
    }
    for (const r of ready) pending.open.delete(r.abs);
    if (pending.open.size === 0) this.manifests.set(mpath, null);
    return this.batchOf(`manifest:${mpath}`, ready);
  }

  /** Records an observation; true when (size, mtime) held for `stableMs`. */
  private observe(abs: string, st: Stats, now: number): boolean {
    const o = this.observed.get(abs);
    if (!o || o.size !== st.size || o.mtimeMs !== st.mtimeMs) {
      this.observed.set(abs, { size: st.size, mtimeMs: st.mtimeMs, since: now });
      this.wakeAt(now + this.stableMs);
      return false;
    }
    if (now - o.since >= this.stableMs) return true;
    this.wakeAt(o.since + this.stableMs);
    return false;
  }

  private async stableFile(abs: string, now: number): Promise<ReadyFile | undefined> {
    let st: Stats;
    try {
      st = await stat(abs);
    } catch {
      this.observed.delete(abs);
      return undefined;
    }
    if (!st.isFile() || st.size === 0) return undefined;
    if (this.yielded.has(localFileId(abs, st))) {
      this.observe(abs, st, now);
      return undefined;
    }
    if (!this.observe(abs, st, now)) return undefined;
    if (this.retryPending(abs, now)) return undefined;
    return { abs, size: st.size, mtimeMs: st.mtimeMs };
  }

  /** True while a file whose read failed waits for its next attempt. */
  private retryPending(abs: string, now: number): boolean {
    const f = this.readFailures.get(abs);
    if (!f || now >= f.notBefore) return false;
    this.wakeAt(f.notBefore);
    return true;
  }

  /**
   * A taken file could not be read (`SourceFile.readFailed`): skip it when it is gone or when
   * a later attempt may succeed; quarantine it once `readAttempts` reads failed.
   */
  private async readFailed(r: ReadyFile, id: string, err: Error): Promise<'quarantine' | 'skip'> {
    const code = (err as NodeJS.ErrnoException).code;
    let st: Stats | undefined;
    try {
      st = await stat(r.abs);
    } catch {
      st = undefined;
    }
    if (!st || !st.isFile() || localFileId(r.abs, st) !== id) {
      this.log('warn', 'watch: file gone or replaced before it was read, skipped', {
        file: r.abs,
        error: code ?? err.message,
      });
      this.readFailures.delete(r.abs);
      this.retake(r, id);
      return 'skip';
    }
    const attempts = (this.readFailures.get(r.abs)?.attempts ?? 0) + 1;
    if (attempts >= this.readAttempts) {
      this.log('error', 'watch: file still unreadable, quarantined as read_error', {
        file: r.abs,
        attempts,
        error: err.message,
      });
      this.readFailures.delete(r.abs);
      return 'quarantine';
    }
    const retryInMs = this.readRetryMs * 2 ** (attempts - 1);
    this.readFailures.set(r.abs, { attempts, notBefore: Date.now() + retryInMs });
    this.log('warn', 'watch: file unreadable, will retry', {
      file: r.abs,
      attempt: attempts,
      error: err.message,
      retry_in_ms: retryInMs,
    });
    this.retake(r, id);
    return 'skip';
  }

  /** Makes a yielded file eligible again (a later scan takes it, or its manifest waits for it). */
  private retake(r: ReadyFile, id: string): void {
    this.yielded.delete(id);
    this.invalidateDirsOf([r.abs]);
    const mpath = this.claimed.get(r.abs);
    if (mpath === undefined || !r.expected) return;
    const pending = this.manifests.get(mpath);
    if (pending) pending.open.set(r.abs, r.expected);
    else
      // firstSeen 0: overdue, so the file is taken as soon as it is there and stable again
      this.manifests.set(mpath, {
        manifest: { files: [] },
        firstSeen: 0,
        open: new Map([[r.abs, r.expected]]),
      });
  }

  private batchOf(id: string, files: ReadyFile[]): SourceBatch {
    const sourceFiles = files.map((r) => {
      const fileId = localFileId(r.abs, r);
      const f: SourceFile = {
        id: fileId,
        name: r.abs,
        open: () => this.openFile(r.abs),
        readFailed: (err) => this.readFailed(r, fileId, err),
      };
      if (r.expected) {
        f.expectedSize = r.expected.size;
        if (r.expected.checksum) f.expectedMd5 = r.expected.checksum;
      }
      return f;
    });
    for (const f of sourceFiles) this.yielded.add(f.id);
    return {
      id,
      files: sourceFiles,
      ack: async () => {
        // A file skipped as unreadable is no longer yielded: it is not done.
        for (const f of sourceFiles) {
          if (this.yielded.has(f.id)) {
            this.done.add(f.id);
            this.readFailures.delete(f.name);
          }
        }
      },
      nack: async (reason: Error) => {
        this.log('warn', 'watch: batch failed, will retry', { batch: id, reason: reason.message });
        for (const [i, r] of files.entries()) this.retake(r, sourceFiles[i].id);
      },
    };
  }

  private invalidateDirsOf(files: string[]): void {
    for (const f of files) this.dirs.delete(path.dirname(f));
  }

  // ---- waking up ----

  private wakeAt(t: number): void {
    this.nextWakeAt = Math.min(this.nextWakeAt, t);
  }

  private sleep(): Promise<void> {
    const ms = Math.max(10, Math.min(this.rescanMs, this.nextWakeAt - Date.now()));
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  private watchDir(dir: string): void {
    if (this.watchers.has(dir) || this.watchers.size >= this.maxWatchedDirs || this.closed) return;
    try {
      const w = fsWatch(dir, { persistent: false }, () => {
        // A change under a settled folder must be re-listed; then rescan soon (debounced by
        // the scan itself: one wake-up per sleep).
        this.dirs.delete(dir);
        this.wake?.();
      });
      w.on('error', () => this.forgetDir(dir));
      this.watchers.set(dir, w);
    } catch {
      // Not supported here (some network filesystems): the periodic rescan covers it.
    }
  }

  private forgetDir(dir: string): void {
    this.dirs.delete(dir);
    const w = this.watchers.get(dir);
    if (w) {
      w.close();
      this.watchers.delete(dir);
    }
  }

  private closeWatchers(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
