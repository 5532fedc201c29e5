/**
 * `talon ingest PATH...`: files and folders (recursive) as a one-shot FDR source.
 *
 * - Data files in folders: `.gz`, `.json`, `.ndjson`, `.jsonl`, `.log`, and extension-less
 *   files under FDR folders (`data/`, `fdrv2/`) — the same rule as the watch source. Files named
 *   on the command line are always taken. Skipped in folders: dot/temp files, `manifests/`,
 *   the generator's `ground-truth.json`.
 * - FDR layout: `data/<batch>/part-*.gz`, `fdrv2/<kind>/…`. Manifests (`manifests/*.json`,
 *   the FDR SQS message body) found in a folder holding `data/`, or above a given path, give
 *   each listed file its `expectedSize` and `expectedMd5`, which the pipeline verifies.
 * - Batches: one per folder holding data files, in path order (an FDR batch folder is one
 *   batch); files inside a batch in path order. The order is the same on every run, which the
 *   pipeline's exactly-once grouping relies on.
 * - Identity: `file:<abs path>#<size>-<mtimeMs>` (as the watch source), so the same file
 *   given twice, or again after a crash, is ingested once.
 */
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseFdrManifest, type FdrManifestFile } from './manifest.js';
import type { FdrSource, SourceBatch, SourceFile } from './source.js';
import { isTempName, isWatchedDataFile, localFileId } from './watch.js';

export interface FilesSourceOptions {
  /** Called for problems the source recovers from (an unreadable manifest). */
  warn?: (msg: string, fields?: Record<string, unknown>) => void;
}

interface FoundFile {
  abs: string;
  explicit: boolean;
}

export class FilesSource implements FdrSource {
  readonly kind = 'files';
  /** abs data path → manifest entry */
  private readonly expected = new Map<string, FdrManifestFile>();
  private readonly manifestRootsRead = new Set<string>();

  constructor(
    private readonly paths: string[],
    private readonly opts: FilesSourceOptions = {},
  ) {}

  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    const found: FoundFile[] = [];
    const seen = new Set<string>();
    for (const p of this.paths) {
      const abs = path.resolve(p);
      const st = await stat(abs);
      if (st.isDirectory()) {
        await this.readManifestsAround(abs);
        await this.walk(abs, abs, found, seen);
      } else {
        await this.readManifestsAround(path.dirname(abs));
        if (!seen.has(abs)) {
          seen.add(abs);
          found.push({ abs, explicit: true });
        }
      }
    }
    // one batch per folder, folders and files in path order
    const byDir = new Map<string, string[]>();
    for (const f of found) {
      const dir = path.dirname(f.abs);
      let list = byDir.get(dir);
      if (!list) byDir.set(dir, (list = []));
      list.push(f.abs);
    }
    const dirs = [...byDir.keys()].sort();
    for (const dir of dirs) {
      if (signal.aborted) return;
      const files: SourceFile[] = [];
      for (const abs of byDir.get(dir)!.sort()) files.push(await this.sourceFile(abs));
      yield { id: `dir:${dir}`, files, ack: async () => {} };
    }
  }

  private async sourceFile(abs: string): Promise<SourceFile> {
    const st = await stat(abs);
    const exp = this.expected.get(abs);
    const file: SourceFile = {
      id: localFileId(abs, st),
      name: abs,
      open: async () => createReadStream(abs, { highWaterMark: 256 * 1024 }),
    };
    if (exp) {
      file.expectedSize = exp.size;
      if (exp.checksum) file.expectedMd5 = exp.checksum;
    }
    return file;
  }

  private async walk(root: string, dir: string, out: FoundFile[], seen: Set<string>): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (isTempName(e.name) || e.name === 'manifests' || e.name === '_delta_log') continue;
        await this.walk(root, abs, out, seen);
      } else if (e.isFile()) {
        const rel = path.relative(root, abs).split(path.sep).join('/');
        if (!isWatchedDataFile(rel) || seen.has(abs)) continue;
        seen.add(abs);
        out.push({ abs, explicit: false });
      }
    }
  }

  /** Reads `manifests/*.json` in `dir` and in up to three folders above it (the bucket root). */
  private async readManifestsAround(dir: string): Promise<void> {
    let d = dir;
    for (let up = 0; up <= 3; up++) {
      await this.readManifests(d);
      const parent = path.dirname(d);
      if (parent === d) break;
      d = parent;
    }
  }

  private async readManifests(root: string): Promise<void> {
    if (this.manifestRootsRead.has(root)) return;
    this.manifestRootsRead.add(root);
    const dir = path.join(root, 'manifests');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      if (!name.toLowerCase().endsWith('.json') || isTempName(name)) continue;
      try {
        const m = parseFdrManifest(await readFile(path.join(dir, name), 'utf8'));
        for (const f of m.files) this.expected.set(path.resolve(root, f.path), f);
      } catch (err) {
        this.opts.warn?.('unreadable manifest ignored', {
          manifest: path.join(dir, name),
          err: (err as Error).message,
        });
      }
    }
  }
}
