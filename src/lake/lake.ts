/**
 * A lake: a root (local folder or s3://bucket/prefix) holding one Delta table per folder,
 * plus the DuckDB handle used to write and read their Parquet files.
 *
 * Table names are case-insensitive: the folder is the lower-cased name, the display name
 * (e.g. `NetworkListenIP4`) is kept in the table's metaData `name`.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Db, ident } from '../sql/duckdb.js';
import type { ObjectStore } from './store.js';
import { DeltaTable, type TableSpec } from './table.js';

export interface LakeOptions {
  /** Local cache for S3 objects and staging for new files; default: `<os tmp>/talon-<pid>`. */
  cacheDir?: string;
  /** Reuse an open DuckDB handle instead of opening one. */
  db?: Db;
  /** Use this store instead of opening one for the location (tests, custom backends). */
  store?: ObjectStore;
}

export interface TableSummary {
  name: string;
  version: number;
  rows: number;
  files: number;
  bytes: number;
  /** Set when the table cannot be read (e.g. it needs a Delta feature Talon lacks). */
  error?: string;
}

/** Folder names a table may have: what Talon creates from a name, safe on every store. */
function tableKey(name: string): string {
  const key = name.trim().toLowerCase();
  if (!/^[a-z0-9_][a-z0-9_.-]*$/.test(key) || key === '.' || key === '..') {
    throw new Error(`invalid table name ${JSON.stringify(name)}: use letters, digits, '_', '-' and '.'`);
  }
  return key;
}

export class Lake {
  private readonly tables = new Map<string, DeltaTable>();
  /** Tables registerViews could not expose, with the reason (e.g. an unsupported feature). */
  readonly viewErrors = new Map<string, string>();

  private constructor(
    readonly location: string,
    readonly store: ObjectStore,
    readonly db: Db,
    private readonly ownsDb: boolean,
  ) {}

  /** Opens (and creates, for a local folder) the lake at a folder path or `s3://bucket/prefix`. */
  static async open(location: string, opts: LakeOptions = {}): Promise<Lake> {
    let store = opts.store;
    let where = location;
    if (!store) {
      if (location.startsWith('s3://')) {
        const { S3Store } = await import('./store-s3.js');
        store = await S3Store.open(location, { cacheDir: opts.cacheDir });
      } else {
        const { LocalStore } = await import('./store-local.js');
        where = path.resolve(location);
        await fs.mkdir(where, { recursive: true });
        store = await LocalStore.open(where);
      }
    }
    const db = opts.db ?? (await Db.open());
    return new Lake(where, store, db, !opts.db);
  }

  /** The table object for a folder key (no I/O). */
  private handle(key: string): DeltaTable {
    let t = this.tables.get(key);
    if (!t) this.tables.set(key, (t = new DeltaTable(this, key)));
    return t;
  }

  private async isTable(key: string): Promise<boolean> {
    for await (const o of this.store.list(`${key}/_delta_log/`)) {
      if (/\/_delta_log\/\d{20}\.(json|checkpoint\..*parquet)$/.test(o.key)) return true;
    }
    return false;
  }

  /** Folder keys of every table directly under the root. */
  async tableKeys(): Promise<string[]> {
    const keys = new Set<string>();
    if (this.store.url.startsWith('file:')) {
      const root = fileURLToPath(this.store.url);
      for (const e of await fs.readdir(root, { withFileTypes: true }).catch(() => [])) {
        if (e.name.startsWith('.')) continue;
        if ((e.isDirectory() || e.isSymbolicLink()) && (await this.isTable(e.name))) keys.add(e.name);
      }
    } else {
      for await (const o of this.store.list('')) {
        const m = /^([^/]+)\/_delta_log\/\d{20}\.json$/.exec(o.key);
        if (m) keys.add(m[1]);
      }
    }
    return [...keys].sort();
  }

  /** Names (display names) of every table, sorted. */
  async tableNames(): Promise<string[]> {
    const names: string[] = [];
    for (const key of await this.tableKeys()) {
      try {
        names.push(await this.handle(key).name());
      } catch {
        names.push(key);
      }
    }
    return names.sort((a, b) => a.localeCompare(b));
  }

  /** The table, looked up case-insensitively; undefined when it does not exist. */
  async table(name: string): Promise<DeltaTable | undefined> {
    let key: string;
    try {
      key = tableKey(name);
    } catch {
      // A name Talon could not have created may still be a foreign table's folder.
      key = name;
      if (!name || name.includes('/') || name === '.' || name === '..') return undefined;
    }
    if (this.tables.has(key)) return this.tables.get(key);
    if (await this.isTable(key)) return this.handle(key);
    // Folders written by other engines need not be lower-case.
    const match = (await this.tableKeys()).find((k) => k.toLowerCase() === name.toLowerCase());
    return match === undefined ? undefined : this.handle(match);
  }

  /** Creates the table (version 0) or returns the existing one (same name, any case). */
  async createTable(name: string, spec: TableSpec): Promise<DeltaTable> {
    const key = tableKey(name);
    const t = this.handle(key);
    if (await this.isTable(key)) return t;
    // Two processes may race to create the table: put-if-absent of version 0 picks one.
    await t.create(spec.displayName ?? name, spec);
    return t;
  }

  /** name, version, rows, files, bytes of every table. */
  async summary(): Promise<TableSummary[]> {
    const out: TableSummary[] = [];
    for (const key of await this.tableKeys()) {
      const t = this.handle(key);
      let snap;
      try {
        snap = await t.snapshot();
      } catch (err) {
        const version = await t.latestVersion().catch(() => -1);
        out.push({ name: key, version, rows: 0, files: 0, bytes: 0, error: (err as Error).message });
        continue;
      }
      let rows = snap.numRows;
      if (rows === undefined) {
        const r = await this.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${await snap.scan()}`);
        rows = Number(r[0].n);
      }
      out.push({
        name: snap.name || key,
        version: snap.version,
        rows,
        files: snap.files.length,
        bytes: snap.files.reduce((n, f) => n + f.size, 0),
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Creates (or replaces) a DuckDB view per table at its latest version, named by the table
   * name, so SQL can say `SELECT … FROM userlogon`. Returns the view names.
   * Tables Talon cannot read (unsupported Delta features) get no view; `viewErrors` says why.
   */
  async registerViews(): Promise<string[]> {
    const names: string[] = [];
    this.viewErrors.clear();
    for (const key of await this.tableKeys()) {
      const t = this.handle(key);
      try {
        const snap = await t.snapshot();
        const name = snap.name || key;
        await this.db.run(`CREATE OR REPLACE VIEW ${ident(name)} AS SELECT * FROM ${await snap.scan()}`);
        names.push(name);
      } catch (err) {
        this.viewErrors.set(key, (err as Error).message);
      }
    }
    return names.sort((a, b) => a.localeCompare(b));
  }

  close(): void {
    if (this.ownsDb) this.db.close();
  }
}
