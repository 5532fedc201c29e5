/**
 * Running a user's SQL (`talon query`, the console's SQL tab) safely over the lake.
 *
 * Two independent guards, both enforced by DuckDB itself:
 * 1. Statement type. The text goes through DuckDB's own parser (`extractStatements`) and
 *    binder (`prepare` → `statementType`): exactly one statement, and it must be a SELECT
 *    (DuckDB reports DESCRIBE, SHOW, SUMMARIZE, VALUES, FROM-first and table-valued PRAGMAs
 *    such as `PRAGMA table_info` as SELECT too) or an EXPLAIN of one. COPY, ATTACH, INSTALL,
 *    LOAD, SET, CREATE, INSERT, EXPORT, CALL … are refused before anything runs.
 * 2. File access. `lockDown` turns off external access except for the lake's own folder
 *    (`enable_external_access=false` + `allowed_directories`) and then locks the
 *    configuration, so `read_csv('/etc/passwd')`, `read_text`, `glob`, `ATTACH`, `INSTALL`
 *    fail inside DuckDB even if a statement got past guard 1, and no later `SET` can undo it.
 *    Views created before the lock keep reading the lake's Parquet files.
 *
 * The lock is irreversible for the DuckDB instance: use it on an instance that will only run
 * read-only queries from then on.
 */
import duckdb, {
  type DuckDBConnection,
  type DuckDBPreparedStatement,
  type DuckDBResult,
} from '@duckdb/node-api';
import { literal } from './duckdb.js';

/** A statement the read-only guard does not allow, or a file access outside the lake. */
export class QueryRefusedError extends Error {
  override name = 'QueryRefusedError';
}

export interface LockDownOptions {
  /** Folders SQL may read (the lake root; an S3 lake's local cache). Absolute paths. */
  allowedDirectories: string[];
  /**
   * DuckDB's spill folder for big sorts and joins (DuckDB always allows it, so it must be a
   * private one, not `./.tmp` in whatever the current folder is). Default: no spilling.
   */
  tempDirectory?: string;
}

/**
 * Restricts the DuckDB instance behind `connection` to the given folders and locks its
 * configuration. Create the views the queries need before calling this.
 */
export async function lockDown(connection: DuckDBConnection, opts: LockDownOptions): Promise<void> {
  if (opts.allowedDirectories.length === 0)
    throw new Error('lockDown: at least one allowed directory is needed');
  for (const dir of opts.allowedDirectories) {
    if (!dir.startsWith('/')) throw new Error(`lockDown: allowed directory must be absolute: ${dir}`);
  }
  // temp_directory is added to allowed_directories by DuckDB when set, so set it first.
  await connection.run(`SET temp_directory = ${literal(opts.tempDirectory ?? '')}`);
  await connection.run(`SET autoinstall_known_extensions = false`);
  await connection.run(`SET autoload_known_extensions = false`);
  await connection.run(`SET allow_community_extensions = false`);
  await connection.run(
    `SET allowed_directories = [${opts.allowedDirectories.map((d) => literal(d)).join(', ')}]`,
  );
  await connection.run(`SET enable_external_access = false`);
  await connection.run(`SET lock_configuration = true`);
}

const StatementType = duckdb.StatementType;

/** How a refused statement type is named in the error (INSTALL parses as LOAD, USE as SET). */
const STATEMENT_NAMES: Partial<Record<number, string>> = {
  [StatementType.LOAD]: 'INSTALL/LOAD',
  [StatementType.SET]: 'SET/RESET/USE',
  [StatementType.VARIABLE_SET]: 'SET VARIABLE',
  [StatementType.COPY_DATABASE]: 'COPY DATABASE',
  [StatementType.CREATE_FUNC]: 'CREATE FUNCTION',
  [StatementType.MERGE_INTO]: 'MERGE INTO',
  [StatementType.UPDATE_EXTENSIONS]: 'UPDATE EXTENSIONS',
};

function statementName(type: number): string {
  return STATEMENT_NAMES[type] ?? StatementType[type] ?? `statement type ${type}`;
}

function refused(what: string): QueryRefusedError {
  return new QueryRefusedError(`query refused: only read-only SELECT statements are allowed (got ${what})`);
}

/**
 * Parses and binds `sql` and returns it prepared, when it is one read-only statement;
 * throws QueryRefusedError otherwise. Call `lockDown` first: binding already opens the files
 * a table function names (e.g. `read_csv` sniffs its input).
 */
export async function prepareReadOnly(
  connection: DuckDBConnection,
  sql: string,
): Promise<DuckDBPreparedStatement> {
  const prepared = await prepareSingle(connection, sql);
  const type = prepared.statementType;
  if (type === StatementType.EXPLAIN) {
    // EXPLAIN ANALYZE runs its statement, so what is explained must pass the guard as well.
    const target = explainTarget(sql);
    if (target === undefined) throw refused('EXPLAIN of an unrecognized form');
    const inner = await prepareSingle(connection, target).catch((err: unknown) => {
      if (err instanceof QueryRefusedError) throw err;
      throw refused('EXPLAIN of an unrecognized form');
    });
    if (inner.statementType !== StatementType.SELECT)
      throw refused(`EXPLAIN ${statementName(inner.statementType)}`);
  } else if (type !== StatementType.SELECT) {
    throw refused(statementName(type));
  }
  if (prepared.parameterCount > 0) {
    throw new QueryRefusedError(
      'query refused: parameters ($1, ?) are not supported here; write the values inline',
    );
  }
  return prepared;
}

async function prepareSingle(connection: DuckDBConnection, sql: string): Promise<DuckDBPreparedStatement> {
  if (sql.trim().replace(/;/g, '').trim() === '')
    throw new QueryRefusedError('query refused: the query is empty');
  let extracted;
  try {
    extracted = await connection.extractStatements(sql);
  } catch (err) {
    throw translateError(err);
  }
  if (extracted.count === 0) throw new QueryRefusedError('query refused: the query is empty');
  if (extracted.count > 1) {
    throw new QueryRefusedError(`query refused: exactly one statement is allowed (got ${extracted.count})`);
  }
  try {
    return await extracted.prepare(0);
  } catch (err) {
    throw translateError(err);
  }
}

/**
 * The statement after an `EXPLAIN [ANALYZE] [(options)]` prefix, or undefined when the text
 * does not start that way. Only the prefix is consumed; the rest is checked by DuckDB's
 * parser again, so a prefix this does not recognize ends in a refusal, never in a pass.
 */
export function explainTarget(sql: string): string | undefined {
  let i = 0;
  const skipSpaceAndComments = () => {
    for (;;) {
      while (i < sql.length && /\s/.test(sql[i])) i++;
      if (sql.startsWith('--', i)) {
        const nl = sql.indexOf('\n', i);
        i = nl < 0 ? sql.length : nl + 1;
      } else if (sql.startsWith('/*', i)) {
        const end = sql.indexOf('*/', i + 2);
        if (end < 0) return false;
        i = end + 2;
      } else return true;
    }
  };
  const word = () => {
    const m = /^[A-Za-z_]+/.exec(sql.slice(i));
    return m ? m[0] : '';
  };
  if (!skipSpaceAndComments() || word().toUpperCase() !== 'EXPLAIN') return undefined;
  i += 'EXPLAIN'.length;
  if (!skipSpaceAndComments()) return undefined;
  const next = word().toUpperCase();
  if (next === 'ANALYZE' || next === 'ANALYSE') {
    i += next.length;
  } else if (sql[i] === '(') {
    const end = sql.indexOf(')', i);
    // Options are plain words (`ANALYZE`, `FORMAT json`); anything fancier is not recognized.
    if (end < 0 || !/^[\s\w,]*$/.test(sql.slice(i + 1, end))) return undefined;
    i = end + 1;
  }
  return sql.slice(i);
}

/**
 * Runs a checked statement and returns its streaming result. Errors (also those raised
 * while fetching chunks — use `translateError` there) name a blocked file access plainly.
 */
export async function runReadOnly(connection: DuckDBConnection, sql: string): Promise<DuckDBResult> {
  const prepared = await prepareReadOnly(connection, sql);
  try {
    return await prepared.stream();
  } catch (err) {
    throw translateError(err);
  }
}

/** DuckDB's permission errors → QueryRefusedError; anything else unchanged. */
export function translateError(err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (/^Permission Error:/.test(message) || /disabled by configuration|has been locked/.test(message)) {
    const file = /Cannot access (?:file|directory) "([^"]*)"/.exec(message)?.[1];
    return new QueryRefusedError(
      `query refused: file access outside the lake is not allowed${file ? ` (${file})` : ''}`,
    );
  }
  return err instanceof Error ? err : new Error(message);
}
