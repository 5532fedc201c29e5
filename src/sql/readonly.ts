/**
 * Running a user's SQL (`talon query`, the console's SQL tab) safely over the lake.
 *
 * Two independent guards, both enforced by DuckDB itself:
 * 1. Statement type. The text goes through DuckDB's own parser (`extractStatements`,
 *    `json_serialize_sql`) and then its binder (`prepare` → `statementType`): exactly one
 *    statement, and it must be a SELECT (DESCRIBE, SHOW, SUMMARIZE, VALUES and FROM-first
 *    queries are SELECTs to DuckDB) or an EXPLAIN of one. COPY, ATTACH, INSTALL, LOAD, SET,
 *    CREATE, INSERT, EXPORT, CALL, PRAGMA … are refused before anything is bound or run.
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

function refused(what: string): QueryRefusedError {
  return new QueryRefusedError(`query refused: only read-only SELECT statements are allowed (got ${what})`);
}

/**
 * Parses and binds `sql` and returns it prepared, when it is one read-only statement;
 * throws QueryRefusedError otherwise. Call `lockDown` first: binding a SELECT already opens
 * the files its table functions name (e.g. `read_csv` sniffs its input).
 *
 * The type is decided from the parse tree before anything is bound, because binding some
 * statements already acts (binding `EXPORT DATABASE 'dir'` creates the folder): DuckDB's
 * `json_serialize_sql` serializes SELECT statements only (DESCRIBE, SHOW, SUMMARIZE, VALUES
 * and FROM-first queries parse as SELECT) and reports every other statement as an error.
 * The bound statement's `statementType` is checked again afterwards.
 */
export async function prepareReadOnly(
  connection: DuckDBConnection,
  sql: string,
): Promise<DuckDBPreparedStatement> {
  await requireSingleStatement(connection, sql);
  let explained = false;
  if (!(await parsesAsSelect(connection, sql))) {
    // EXPLAIN ANALYZE runs its statement, so what is explained must pass the guard as well.
    const target = explainTarget(sql);
    if (target === undefined) throw refused(leadingKeyword(sql));
    if (!(await parsesAsSelect(connection, target))) throw refused(`EXPLAIN ${leadingKeyword(target)}`);
    explained = true;
  }
  const extracted = await connection.extractStatements(sql);
  let prepared: DuckDBPreparedStatement;
  try {
    prepared = await extracted.prepare(0);
  } catch (err) {
    throw translateError(err);
  }
  const expected = explained ? StatementType.EXPLAIN : StatementType.SELECT;
  if (prepared.statementType !== expected) {
    throw refused(StatementType[prepared.statementType] ?? `statement type ${prepared.statementType}`);
  }
  if (prepared.parameterCount > 0) {
    throw new QueryRefusedError(
      'query refused: parameters ($1, ?) are not supported here; write the values inline',
    );
  }
  return prepared;
}

async function requireSingleStatement(connection: DuckDBConnection, sql: string): Promise<void> {
  if (sql.replace(/;/g, '').trim() === '') throw new QueryRefusedError('query refused: the query is empty');
  let count: number;
  try {
    count = (await connection.extractStatements(sql)).count;
  } catch (err) {
    throw translateError(err);
  }
  if (count === 0) throw new QueryRefusedError('query refused: the query is empty');
  if (count > 1)
    throw new QueryRefusedError(`query refused: exactly one statement is allowed (got ${count})`);
}

/** Whether DuckDB's parser reads `sql` as SELECT statement(s); parsing only, nothing is bound. */
async function parsesAsSelect(connection: DuckDBConnection, sql: string): Promise<boolean> {
  // json_serialize_sql takes a constant only, hence the literal (quotes doubled) over a parameter.
  const reader = await connection.runAndReadAll(
    `SELECT json_serialize_sql(${literal(sql)})::VARCHAR AS tree`,
  );
  const tree = JSON.parse(String(reader.getRowObjectsJson()[0].tree)) as { error?: boolean };
  return tree.error !== true;
}

/** The first word of a statement, for the refusal message (the decision is the parser's). */
function leadingKeyword(sql: string): string {
  const text = sql.replace(/^(\s|--[^\n]*(\n|$)|\/\*[\s\S]*?\*\/)*/, '');
  const word = /^[A-Za-z_]+/.exec(text)?.[0]?.toUpperCase();
  return word && word !== 'WITH' ? word : 'a statement that is not a SELECT';
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
