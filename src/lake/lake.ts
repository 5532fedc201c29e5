/**
 * A lake: a root (local folder or s3://bucket/prefix) holding one Delta table per folder,
 * plus the DuckDB handle used to write and read their Parquet files.
 *
 * Table names are case-insensitive: the folder is the lower-cased name, the display name
 * (e.g. `NetworkListenIP4`) is kept in the table's metaData `name`.
 */
import { Db } from '../sql/duckdb.js';
import type { ObjectStore } from './store.js';
import type { DeltaTable, TableSpec } from './table.js';

export interface LakeOptions {
  /** Local cache for S3 objects and staging for new files; default: `<os tmp>/talon-<pid>`. */
  cacheDir?: string;
  /** Reuse an open DuckDB handle instead of opening one. */
  db?: Db;
}

export interface TableSummary {
  name: string;
  version: number;
  rows: number;
  files: number;
  bytes: number;
}

export class Lake {
  private constructor(
    readonly location: string,
    readonly store: ObjectStore,
    readonly db: Db,
  ) {}

  /** Opens (and creates, for a local folder) the lake at a folder path or `s3://bucket/prefix`. */
  static async open(_location: string, _opts: LakeOptions = {}): Promise<Lake> {
    throw new Error('Lake.open: not implemented yet');
  }

  /** Names (display names) of every table, sorted. */
  async tableNames(): Promise<string[]> {
    throw new Error('not implemented yet');
  }

  /** The table, looked up case-insensitively; undefined when it does not exist. */
  async table(_name: string): Promise<DeltaTable | undefined> {
    throw new Error('not implemented yet');
  }

  /** Creates the table (version 0) or returns the existing one (same name, any case). */
  async createTable(_name: string, _spec: TableSpec): Promise<DeltaTable> {
    throw new Error('not implemented yet');
  }

  /** name, version, rows, files, bytes of every table. */
  async summary(): Promise<TableSummary[]> {
    throw new Error('not implemented yet');
  }

  /**
   * Creates (or replaces) a DuckDB view per table at its latest version, named by the table
   * name, so SQL can say `SELECT … FROM userlogon`. Returns the view names.
   */
  async registerViews(): Promise<string[]> {
    throw new Error('not implemented yet');
  }

  close(): void {
    this.db.close();
  }
}
