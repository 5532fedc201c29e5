/**
 * The one DuckDB handle a Talon process works with. Parquet files are written and read
 * through it, and every SQL a user or a detection runs goes through it.
 *
 * Why a wrapper: the node API hands back DuckDB value objects and BigInts; Talon's callers
 * want plain JSON-safe rows (`allJson`) or JS values (`all`), and a single place that fixes
 * the session settings every query relies on (UTC, so TIMESTAMP values mean what Delta says).
 */
import duckdb from '@duckdb/node-api';

export type Row = Record<string, unknown>;

export interface DbOptions {
  /** DuckDB worker threads; default: DuckDB's own choice (the machine's cores). */
  threads?: number;
  /** e.g. '2GB'; default: DuckDB's (80% of RAM). */
  memoryLimit?: string;
  /** Spill directory for large sorts/joins; default: DuckDB's (.tmp next to the db). */
  tempDirectory?: string;
}

export interface ColumnInfo {
  name: string;
  /** DuckDB's type text, e.g. `VARCHAR`, `STRUCT(a INTEGER, b VARCHAR)`, `BIGINT[]`. */
  type: string;
}

export class Db {
  private constructor(
    readonly instance: duckdb.DuckDBInstance,
    readonly connection: duckdb.DuckDBConnection,
  ) {}

  static async open(opts: DbOptions = {}): Promise<Db> {
    // TimeZone cannot go in the start-up config: it needs the icu extension, which is only
    // loaded once the instance exists. Setting it right after connecting has the same effect.
    const config: Record<string, string> = {};
    if (opts.threads) config.threads = String(opts.threads);
    if (opts.memoryLimit) config.memory_limit = opts.memoryLimit;
    if (opts.tempDirectory) config.temp_directory = opts.tempDirectory;
    const instance = await duckdb.DuckDBInstance.create(':memory:', config);
    const connection = await instance.connect();
    await connection.run("SET TimeZone = 'UTC'");
    return new Db(instance, connection);
  }

  /**
   * Another connection to the same DuckDB instance: its statements run concurrently with this
   * one's (temp tables and views are per connection). Closing it closes that connection only.
   */
  async fork(): Promise<Db> {
    const connection = await this.instance.connect();
    await connection.run("SET TimeZone = 'UTC'");
    const db = new Db(this.instance, connection);
    db.forked = true;
    return db;
  }

  private forked = false;

  /** Runs statements for their effect. */
  async run(sql: string, params?: duckdb.DuckDBValue[] | Record<string, duckdb.DuckDBValue>): Promise<void> {
    await this.connection.run(sql, params);
  }

  /** Rows as JS values (BIGINT → bigint, TIMESTAMP → Date via DuckDB's JS converter). */
  async all<T = Row>(
    sql: string,
    params?: duckdb.DuckDBValue[] | Record<string, duckdb.DuckDBValue>,
  ): Promise<T[]> {
    const reader = await this.connection.runAndReadAll(sql, params);
    return reader.getRowObjectsJS() as T[];
  }

  /** Rows as JSON-safe values (big integers and timestamps as strings), for printing and APIs. */
  async allJson<T = Row>(
    sql: string,
    params?: duckdb.DuckDBValue[] | Record<string, duckdb.DuckDBValue>,
  ): Promise<T[]> {
    const reader = await this.connection.runAndReadAll(sql, params);
    return reader.getRowObjectsJson() as T[];
  }

  /** The columns (name and DuckDB type) a query would return, without running it. */
  async columns(sql: string): Promise<ColumnInfo[]> {
    const rows = await this.all<{ column_name: string; column_type: string }>(`DESCRIBE (${sql})`);
    return rows.map((r) => ({ name: r.column_name, type: r.column_type }));
  }

  /**
   * Creates (or replaces) temp table `name` and fills it with `rows` through DuckDB's appender.
   * For rows computed in JS (operator state, row ids): a VALUES list would put every row in the
   * SQL text, and parsing and binding it cost more than the rest of a small batch.
   */
  async tempTableFromRows(
    name: string,
    columns: { name: string; type: 'VARCHAR' | 'BIGINT' }[],
    rows: (string | bigint | number | null)[][],
  ): Promise<void> {
    await this.run(
      `CREATE OR REPLACE TEMP TABLE ${ident(name)} (${columns.map((c) => `${ident(c.name)} ${c.type}`).join(', ')})`,
    );
    if (rows.length === 0) return;
    const appender = await this.connection.createAppender(name, 'main', 'temp');
    try {
      for (const row of rows) {
        columns.forEach((c, i) => {
          const v = row[i];
          if (v === null || v === undefined) appender.appendNull();
          else if (c.type === 'BIGINT') appender.appendBigInt(BigInt(v));
          else appender.appendVarchar(String(v));
        });
        appender.endRow();
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
  }

  close(): void {
    this.connection.closeSync();
    if (!this.forked) this.instance.closeSync();
  }
}

/** Quotes an identifier for DuckDB SQL. */
export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** Quotes a string literal for DuckDB SQL. */
export function literal(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'";
}
