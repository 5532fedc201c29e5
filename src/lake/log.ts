/**
 * A table's `_delta_log/`: listing, reading commits and checkpoints, replaying them into a
 * table state, and committing the next version with put-if-absent.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { literal } from '../sql/duckdb.js';
import type { Db } from '../sql/duckdb.js';
import {
  type Action,
  type AddAction,
  type CommitInfoAction,
  type MetaDataAction,
  type ProtocolAction,
  type RemoveAction,
  type TxnAction,
  fileKey,
  stripNulls,
} from './actions.js';
import { parseInterval } from './interval.js';
import type { ObjectInfo, ObjectStore } from './store.js';

export const LOG_DIR = '_delta_log';

export function versionName(v: number): string {
  return String(v).padStart(20, '0');
}

/** The state of a table at one version (protocol "Action Reconciliation"). */
export interface TableState {
  version: number;
  protocol: ProtocolAction;
  metaData: MetaDataAction;
  /** active logical files by (path, dvId) */
  files: Map<string, AddAction>;
  /** remove tombstones by (path, dvId), kept for vacuum */
  tombstones: Map<string, RemoveAction>;
  txns: Map<string, TxnAction>;
}

export interface CheckpointRef {
  version: number;
  kind: 'classic' | 'multipart' | 'v2';
  /** log-relative keys of the parts (multi-part: in part order) */
  keys: string[];
}

export interface LogListing {
  commits: Map<number, ObjectInfo>;
  checkpoints: CheckpointRef[];
  /** highest committed version, -1 when the log is empty */
  latest: number;
}

const COMMIT_RE = /^(\d{20})\.json$/;
const CLASSIC_RE = /^(\d{20})\.checkpoint\.parquet$/;
const MULTI_RE = /^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$/;
const UUID_RE = /^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(json|parquet)$/;

export class DeltaLog {
  /** Parsed commits by version; commits are immutable once written. */
  private readonly commitCache = new Map<number, Action[]>();

  constructor(
    readonly store: ObjectStore,
    readonly db: Db,
    /** table folder key under the lake root (no trailing slash) */
    readonly tableKey: string,
  ) {}

  get logPrefix(): string {
    return `${this.tableKey}/${LOG_DIR}/`;
  }

  commitKey(version: number): string {
    return `${this.logPrefix}${versionName(version)}.json`;
  }

  async list(): Promise<LogListing> {
    const commits = new Map<number, ObjectInfo>();
    const multi = new Map<string, { version: number; parts: number; keys: Map<number, string> }>();
    const checkpoints: CheckpointRef[] = [];
    for await (const info of this.listLogDir()) {
      const name = info.key.slice(this.logPrefix.length);
      if (name.includes('/')) continue; // _sidecars/, _staged_commits/, .tmp/ …
      let m: RegExpExecArray | null;
      if ((m = COMMIT_RE.exec(name))) commits.set(Number(m[1]), info);
      else if ((m = CLASSIC_RE.exec(name)))
        checkpoints.push({ version: Number(m[1]), kind: 'classic', keys: [info.key] });
      else if ((m = UUID_RE.exec(name)))
        checkpoints.push({ version: Number(m[1]), kind: 'v2', keys: [info.key] });
      else if ((m = MULTI_RE.exec(name))) {
        const id = `${m[1]}/${m[3]}`;
        const entry = multi.get(id) ?? { version: Number(m[1]), parts: Number(m[3]), keys: new Map() };
        entry.keys.set(Number(m[2]), info.key);
        multi.set(id, entry);
      }
    }
    // A multi-part checkpoint with missing parts must be ignored (it may be half written).
    for (const e of multi.values()) {
      if (e.keys.size !== e.parts) continue;
      const keys: string[] = [];
      for (let i = 1; i <= e.parts; i++) {
        const k = e.keys.get(i);
        if (!k) break;
        keys.push(k);
      }
      if (keys.length === e.parts) checkpoints.push({ version: e.version, kind: 'multipart', keys });
    }
    // Prefer newer, then classic (one atomic file) over the others for the same version.
    const rank = { classic: 0, v2: 1, multipart: 2 };
    checkpoints.sort((a, b) => b.version - a.version || rank[a.kind] - rank[b.kind]);
    let latest = -1;
    for (const v of commits.keys()) latest = Math.max(latest, v);
    return { commits, checkpoints, latest };
  }

  /**
   * The objects directly in `_delta_log/`. On a local folder this is one readdir without a
   * stat per file (a busy table's log holds many thousands of commits); sizes and times are
   * then unknown (NaN) and fetched with `head` when needed.
   */
  private async *listLogDir(): AsyncIterable<ObjectInfo> {
    if (this.store.url.startsWith('file:')) {
      const dir = path.join(fileURLToPath(this.store.url), ...this.logPrefix.split('/').filter(Boolean));
      let names: string[];
      try {
        names = await fs.readdir(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const n of names.sort()) yield { key: this.logPrefix + n, size: NaN, lastModified: NaN };
      return;
    }
    yield* this.store.list(this.logPrefix);
  }

  async readCommit(version: number): Promise<Action[] | undefined> {
    const cached = this.commitCache.get(version);
    if (cached) return cached;
    const body = await this.store.get(this.commitKey(version));
    if (!body) return undefined;
    const actions: Action[] = [];
    for (const line of body.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      actions.push(JSON.parse(line) as Action);
    }
    if (this.commitCache.size > 2000) this.commitCache.clear();
    this.commitCache.set(version, actions);
    return actions;
  }

  /** Reads commits in parallel (bounded), in version order. */
  async readCommits(versions: number[]): Promise<Action[][]> {
    const out: Action[][] = new Array(versions.length);
    const width = 16;
    for (let i = 0; i < versions.length; i += width) {
      const chunk = versions.slice(i, i + width);
      const read = await Promise.all(chunk.map((v) => this.readCommit(v)));
      read.forEach((a, j) => {
        if (!a)
          throw new Error(`${this.tableKey}: commit ${versionName(chunk[j])}.json is missing from the log`);
        out[i + j] = a;
      });
    }
    return out;
  }

  /** Reads a checkpoint's actions with DuckDB (Parquet) or as JSON (UUID-named v2 JSON). */
  async readCheckpoint(cp: CheckpointRef): Promise<Action[]> {
    if (cp.keys[0].endsWith('.json')) {
      const body = await this.store.get(cp.keys[0]);
      if (!body) throw new Error(`checkpoint ${cp.keys[0]} vanished`);
      const actions = body
        .toString('utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Action);
      return this.withSidecars(actions);
    }
    const paths = await Promise.all(cp.keys.map((k) => this.store.localPath(k)));
    return this.withSidecars(await this.readActionParquet(paths));
  }

  private async withSidecars(actions: Action[]): Promise<Action[]> {
    const sidecars = actions.filter((a) => a.sidecar).map((a) => a.sidecar as { path: string });
    if (sidecars.length === 0) return actions;
    const paths = await Promise.all(
      sidecars.map((s) => {
        const name = decodeURIComponent(s.path.split('/').pop()!);
        return this.store.localPath(`${this.logPrefix}_sidecars/${name}`);
      }),
    );
    return [...actions.filter((a) => !a.sidecar), ...(await this.readActionParquet(paths))];
  }

  private async readActionParquet(paths: string[]): Promise<Action[]> {
    const src = `read_parquet([${paths.map(literal).join(', ')}], union_by_name = true, hive_partitioning = false)`;
    const cols = (await this.db.columns(`SELECT * FROM ${src}`)).map((c) => c.name);
    const wanted = [
      'add',
      'remove',
      'metaData',
      'protocol',
      'txn',
      'checkpointMetadata',
      'sidecar',
      'domainMetadata',
    ];
    const present = wanted.filter((w) => cols.includes(w));
    if (present.length === 0) return [];
    const rows = await this.db.all<Record<string, string | null>>(
      `SELECT ${present.map((c) => `to_json("${c}") AS "${c}"`).join(', ')} FROM ${src}`,
    );
    const actions: Action[] = [];
    for (const row of rows) {
      for (const c of present) {
        const v = row[c];
        if (v === null || v === undefined) continue;
        const parsed = stripNulls(JSON.parse(v) as Record<string, unknown>);
        if (c === 'add') {
          // Tables written with delta.checkpoint.writeStatsAsStruct keep stats only as a struct.
          if (parsed.stats === undefined && parsed.stats_parsed)
            parsed.stats = JSON.stringify(parsed.stats_parsed);
          delete parsed.stats_parsed;
          delete parsed.partitionValues_parsed;
          parsed.partitionValues ??= {};
        }
        actions.push({ [c]: parsed } as Action);
      }
    }
    return actions;
  }

  /**
   * The table state at `target` (default: latest), replayed from the newest usable checkpoint
   * at or before it. A checkpoint that cannot be read falls back to an older one, or to the
   * JSON commits from version 0 — `_last_checkpoint` is only a hint and is not needed.
   */
  async loadState(target?: number, base?: TableState, listing?: LogListing): Promise<TableState> {
    const state = await this.reconstruct(target, base, listing);
    expireTxns(state);
    return state;
  }

  private async reconstruct(target?: number, base?: TableState, listing?: LogListing): Promise<TableState> {
    const l = listing ?? (await this.list());
    if (l.latest < 0) throw new Error(`${this.tableKey}: not a Delta table (no commits in ${LOG_DIR}/)`);
    const version = target ?? l.latest;
    if (version > l.latest || version < 0) {
      throw new Error(`${this.tableKey}: version ${version} does not exist (latest is ${l.latest})`);
    }
    if (base && base.version <= version && this.hasCommits(l, base.version + 1, version)) {
      return this.replay(cloneState(base), base.version + 1, version);
    }
    let lastErr: unknown;
    for (const cp of l.checkpoints) {
      if (cp.version > version) continue;
      if (!this.hasCommits(l, cp.version + 1, version)) continue;
      let actions: Action[];
      try {
        actions = await this.readCheckpoint(cp);
      } catch (err) {
        lastErr = err;
        continue;
      }
      const state = emptyState(cp.version);
      applyActions(state, actions);
      if (!state.protocol.minReaderVersion || !state.metaData.id) continue;
      return this.replay(state, cp.version + 1, version);
    }
    if (this.hasCommits(l, 0, version)) return this.replay(emptyState(-1), 0, version);
    if (lastErr) throw lastErr;
    throw new Error(
      `${this.tableKey}: cannot reconstruct version ${version}: commits are missing and no checkpoint covers them`,
    );
  }

  private hasCommits(l: LogListing, from: number, to: number): boolean {
    for (let v = from; v <= to; v++) if (!l.commits.has(v)) return false;
    return true;
  }

  private async replay(state: TableState, from: number, to: number): Promise<TableState> {
    const versions: number[] = [];
    for (let v = from; v <= to; v++) versions.push(v);
    const commits = await this.readCommits(versions);
    commits.forEach((actions) => applyActions(state, actions));
    state.version = to;
    if (!state.metaData.id && !state.metaData.schemaString) {
      throw new Error(`${this.tableKey}: the log has no metaData action up to version ${to}`);
    }
    if (!state.protocol.minReaderVersion)
      throw new Error(`${this.tableKey}: the log has no protocol action up to version ${to}`);
    return state;
  }

  /** Commit timestamp: inCommitTimestamp, else commitInfo.timestamp, else the file's mtime. */
  async commitTimestamp(version: number, info?: ObjectInfo): Promise<number> {
    const actions = await this.readCommit(version);
    const ci = actions?.find((a) => a.commitInfo)?.commitInfo as CommitInfoAction | undefined;
    const ts = ci?.inCommitTimestamp ?? ci?.timestamp;
    if (typeof ts === 'number') return ts;
    const h =
      info && Number.isFinite(info.lastModified) ? info : await this.store.head(this.commitKey(version));
    return h?.lastModified ?? 0;
  }

  /**
   * Timestamps of every listed commit from `from`, made monotonic as Delta does for time travel
   * (a commit never appears older than the one before it).
   */
  async commitTimestamps(l: LogListing, from = 0): Promise<Map<number, number>> {
    const versions = [...l.commits.keys()].filter((v) => v >= from).sort((a, b) => a - b);
    const out = new Map<number, number>();
    let prev = -Infinity;
    const width = 16;
    for (let i = 0; i < versions.length; i += width) {
      const chunk = versions.slice(i, i + width);
      const ts = await Promise.all(chunk.map((v) => this.commitTimestamp(v, l.commits.get(v))));
      chunk.forEach((v, j) => {
        const t = Math.max(ts[j], prev === -Infinity ? ts[j] : prev + 1);
        out.set(v, t);
        prev = t;
      });
    }
    return out;
  }

  /** Writes version `version` unless it exists; false when another writer got there first. */
  async tryCommit(version: number, actions: Action[]): Promise<boolean> {
    const body = actions.map((a) => JSON.stringify(a)).join('\n') + '\n';
    const ok = await this.store.putIfAbsent(this.commitKey(version), body);
    if (ok) this.commitCache.set(version, JSON.parse(JSON.stringify(actions)) as Action[]);
    return ok;
  }
}

export function emptyState(version: number): TableState {
  return {
    version,
    protocol: { minReaderVersion: 0, minWriterVersion: 0 },
    metaData: {
      id: '',
      format: { provider: 'parquet', options: {} },
      schemaString: '',
      partitionColumns: [],
      configuration: {},
    },
    files: new Map(),
    tombstones: new Map(),
    txns: new Map(),
  };
}

export function cloneState(s: TableState): TableState {
  return {
    version: s.version,
    protocol: s.protocol,
    metaData: s.metaData,
    files: new Map(s.files),
    tombstones: new Map(s.tombstones),
    txns: new Map(s.txns),
  };
}

/**
 * Drops txn entries older than `delta.setTransactionRetentionDuration` (by `lastUpdated`;
 * entries without it never expire), as Delta does when it builds a snapshot — so per-file
 * txns (one appId per ingested source file) do not grow the table state and every
 * checkpoint forever. Unset property: nothing expires. An expired appId reads as never
 * committed, so a replay older than the retention is not recognised as one.
 */
export function expireTxns(state: TableState, now = Date.now()): void {
  const text = state.metaData.configuration?.['delta.setTransactionRetentionDuration'];
  if (!text || state.txns.size === 0) return;
  const retention = parseInterval(text, NaN);
  if (!Number.isFinite(retention)) return;
  const cutoff = now - retention;
  for (const [id, t] of state.txns) {
    if (typeof t.lastUpdated === 'number' && t.lastUpdated < cutoff) state.txns.delete(id);
  }
}

export function applyActions(state: TableState, actions: Action[]): void {
  for (const a of actions) {
    if (a.add) {
      const k = fileKey(a.add);
      state.files.set(k, { ...a.add, partitionValues: a.add.partitionValues ?? {} });
      state.tombstones.delete(k);
    } else if (a.remove) {
      const k = fileKey(a.remove);
      state.files.delete(k);
      state.tombstones.set(k, a.remove);
    } else if (a.metaData) {
      state.metaData = {
        ...a.metaData,
        configuration: a.metaData.configuration ?? {},
        partitionColumns: a.metaData.partitionColumns ?? [],
      };
    } else if (a.protocol) {
      state.protocol = a.protocol;
    } else if (a.txn) {
      state.txns.set(a.txn.appId, a.txn);
    }
  }
}
