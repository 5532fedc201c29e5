/**
 * A lake on a local folder. The folder is the lake: table folders, Parquet files and
 * `_delta_log/` are plain files any Delta reader can open.
 *
 * Atomicity comes from the filesystem, not from locks, so it holds across processes:
 * - put-if-absent writes the whole body to a temp file, then `link()`s it to the target.
 *   link fails with EEXIST when the target exists, and the target appears complete or not at
 *   all — never a torn or overwritten commit file (the Delta protocol's mutual exclusion).
 * - put/upload write elsewhere, then `rename()` over the target: readers see old or new bytes.
 * Temp and staged files live in `<root>/.talon-staging/`, on the same filesystem (so link and
 * rename work) and outside every table folder (so `list` and other Delta readers never see them).
 */
import { randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ObjectInfo, ObjectStore } from './store.js';
import { checkFolderPrefix, checkKey, checkPrefix, checkSuffix, compareKeys } from './store-keys.js';

/** Folder under the lake root for in-flight temp files and staged new files; never listed. */
export const LOCAL_STAGING_DIR = '.talon-staging';

/** Staged files older than this are leftovers of a crashed writer and are removed on open. */
const STALE_STAGING_MS = 24 * 3600 * 1000;

export interface LocalStoreOptions {
  /**
   * fsync commit and data files before they become visible, so a power loss cannot leave a
   * committed log entry pointing at a file whose bytes never reached the disk. Default: true.
   */
  fsync?: boolean;
}

export class LocalStore implements ObjectStore {
  readonly url: string;
  private readonly staging: string;

  private constructor(
    /** Absolute path of the lake folder. */
    readonly root: string,
    private readonly opts: Required<LocalStoreOptions>,
  ) {
    this.url = pathToFileURL(root).href;
    this.staging = path.join(root, LOCAL_STAGING_DIR);
  }

  /** Opens the lake folder `dir` (made absolute), creating it when missing. */
  static async open(dir: string, opts: LocalStoreOptions = {}): Promise<LocalStore> {
    const root = path.resolve(dir);
    await fs.mkdir(path.join(root, LOCAL_STAGING_DIR), { recursive: true });
    const store = new LocalStore(root, { fsync: opts.fsync ?? true });
    await store.removeStaleStaging();
    return store;
  }

  /** Absolute path of `key` (checked: it cannot leave the root). */
  pathOf(key: string): string {
    return path.join(this.root, ...checkKey(key).split('/'));
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await fs.readFile(this.pathOf(key));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await fs.stat(this.pathOf(key));
      if (!st.isFile()) return undefined;
      return { key, size: st.size, lastModified: Math.floor(st.mtimeMs) };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    const target = this.pathOf(key);
    const tmp = await this.writeTemp(body);
    try {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async putIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    const target = this.pathOf(key);
    const tmp = await this.writeTemp(body);
    try {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.link(tmp, target);
      if (this.opts.fsync) await fsyncDir(path.dirname(target));
      return true;
    } catch (err) {
      if (errCode(err) === 'EEXIST') return false;
      if (errCode(err) === 'EPERM' || errCode(err) === 'ENOTSUP' || errCode(err) === 'ENOSYS') {
        // Without hard links there is no torn-free put-if-absent on a plain filesystem; refusing is
        // better than risking two writers both "winning" a Delta version.
        throw new Error(
          `lake folder ${this.root} is on a filesystem without hard links (${errCode(err)}); ` +
            'Talon needs link() for atomic Delta commits — use a local disk or S3',
          { cause: err },
        );
      }
      throw err;
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    // Walk only the folder the prefix is inside; the rest of the prefix filters names.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const found: ObjectInfo[] = [];
    await this.walk(dirKey, prefix, found);
    found.sort((a, b) => compareKeys(a.key, b.key));
    yield* found;
  }

  async listFolders(prefix: string): Promise<string[]> {
    checkFolderPrefix(prefix);
    const dir = prefix === '' ? this.root : this.pathOf(prefix.slice(0, -1));
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch((err) => {
      if (isMissing(err)) return [];
      throw err;
    });
    const names: string[] = [];
    for (const e of entries) {
      if (prefix === '' && e.name === LOCAL_STAGING_DIR) continue;
      const isDir =
        e.isDirectory() ||
        (e.isSymbolicLink() && (await fs.stat(path.join(dir, e.name)).catch(() => undefined))?.isDirectory());
      if (isDir) names.push(e.name);
    }
    return names.sort(compareKeys);
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) await fs.rm(this.pathOf(key), { force: true });
  }

  async localPath(key: string): Promise<string> {
    return this.pathOf(key);
  }

  async stagingPath(suffix: string): Promise<string> {
    await fs.mkdir(this.staging, { recursive: true });
    return path.join(this.staging, `${randomUUID()}-${checkSuffix(suffix)}`);
  }

  async upload(localFile: string, key: string): Promise<void> {
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    if (this.opts.fsync) await fsyncFile(localFile);
    try {
      await fs.rename(localFile, target);
    } catch (err) {
      if (errCode(err) !== 'EXDEV') throw err;
      // A file staged on another filesystem: copy next to the target first so the final step is
      // still an atomic rename.
      const tmp = await this.stagingPath('upload');
      try {
        await fs.copyFile(localFile, tmp);
        if (this.opts.fsync) await fsyncFile(tmp);
        await fs.rename(tmp, target);
      } catch (copyErr) {
        await fs.rm(tmp, { force: true });
        throw copyErr;
      }
      await fs.rm(localFile, { force: true });
    }
  }

  private async writeTemp(body: Buffer | string): Promise<string> {
    const tmp = await this.stagingPath('tmp');
    const fh = await fs.open(tmp, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o644);
    try {
      await fh.writeFile(body);
      if (this.opts.fsync) await fh.sync();
    } catch (err) {
      await fh.close();
      await fs.rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    return tmp;
  }

  private async walk(dirKey: string, prefix: string, out: ObjectInfo[]): Promise<void> {
    const dir = dirKey === '' ? this.root : this.pathOf(dirKey);
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err) || errCode(err) === 'ENOTDIR') return;
      throw err;
    }
    for (const entry of entries) {
      if (dirKey === '' && entry.name === LOCAL_STAGING_DIR) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        const st = await fs.stat(path.join(dir, entry.name)).catch(() => undefined);
        isDir = st?.isDirectory() ?? false;
        isFile = st?.isFile() ?? false;
      }
      if (isDir) {
        // Descend only where keys can still match the prefix.
        if (key.startsWith(prefix) || prefix.startsWith(key + '/')) await this.walk(key, prefix, out);
      } else if (isFile && key.startsWith(prefix)) {
        const st = await fs.stat(path.join(dir, entry.name)).catch((err) => {
          if (isMissing(err)) return undefined; // deleted while listing
          throw err;
        });
        if (st) out.push({ key, size: st.size, lastModified: Math.floor(st.mtimeMs) });
      }
    }
  }

  private async removeStaleStaging(): Promise<void> {
    const now = Date.now();
    for (const name of await fs.readdir(this.staging).catch(() => [] as string[])) {
      const p = path.join(this.staging, name);
      const st = await fs.stat(p).catch(() => undefined);
      if (st && now - st.mtimeMs > STALE_STAGING_MS) await fs.rm(p, { force: true, recursive: true });
    }
  }
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isMissing(err: unknown): boolean {
  const code = errCode(err);
  return code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR';
}

async function fsyncFile(file: string): Promise<void> {
  const fh = await fs.open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A new directory entry is durable only once its directory is synced (POSIX). */
async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await fs.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some platforms cannot open or fsync a directory; the file itself is already synced.
  } finally {
    await fh?.close();
  }
}
