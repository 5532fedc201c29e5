/**
 * SQL over a set of a table's Parquet files: one `read_parquet` of all of them, every column
 * cast to the table's type, columns a file lacks read as NULL, and partition values (which are
 * not in the files) joined in from a VALUES list keyed by file name — never from folder names,
 * since other writers need not use Hive-style folders.
 */
import { ident, literal } from '../sql/duckdb.js';
import type { Db } from '../sql/duckdb.js';
import { partitionLiteral } from './partition.js';
import { duckType } from './schema.js';
import type { StructType } from './table.js';

export const FILE_COL = '__talon_file';

export interface ScanFile {
  /** local path DuckDB reads */
  local: string;
  partitionValues: Record<string, string | null>;
  /** values (SQL expressions) of the constant columns, by name */
  consts?: Record<string, string>;
}

export interface ScanOptions {
  /** constant per-file columns (from ScanFile.consts), e.g. `_commit_version` */
  constCols?: { name: string; type: string }[];
  /** extra columns read from the files as they are, e.g. `_change_type` of cdc files */
  fileCols?: { name: string; type: string }[];
  /** expose the local file path as column `__talon_file` */
  withFile?: boolean;
}

function pv(values: Record<string, string | null>, col: string): string | null | undefined {
  if (col in values) return values[col];
  const k = Object.keys(values).find((x) => x.toLowerCase() === col.toLowerCase());
  return k === undefined ? undefined : values[k];
}

export async function filesSql(
  db: Db,
  schema: StructType,
  partitionColumns: string[],
  files: ScanFile[],
  opts: ScanOptions = {},
): Promise<string> {
  const partSet = new Set(partitionColumns.map((c) => c.toLowerCase()));
  const constCols = opts.constCols ?? [];
  const fileCols = opts.fileCols ?? [];
  if (files.length === 0) {
    const cols = [
      ...schema.fields.map((f) => `CAST(NULL AS ${duckType(f.type)}) AS ${ident(f.name)}`),
      ...fileCols.map((c) => `CAST(NULL AS ${c.type}) AS ${ident(c.name)}`),
      ...constCols.map((c) => `CAST(NULL AS ${c.type}) AS ${ident(c.name)}`),
      ...(opts.withFile ? [`CAST(NULL AS VARCHAR) AS ${FILE_COL}`] : []),
    ];
    return `(SELECT ${cols.length ? cols.join(', ') : '1 AS __talon_empty'} WHERE false)`;
  }
  const reader =
    `read_parquet([${files.map((f) => literal(f.local)).join(', ')}], ` +
    `union_by_name = true, hive_partitioning = false, filename = '${FILE_COL}')`;
  const present = new Set((await db.columns(`SELECT * FROM ${reader}`)).map((c) => c.name.toLowerCase()));
  const partFields = schema.fields.filter((f) => partSet.has(f.name.toLowerCase()));
  const needJoin = partFields.length > 0 || constCols.length > 0;
  const select: string[] = [];
  for (const f of schema.fields) {
    const t = duckType(f.type);
    if (partSet.has(f.name.toLowerCase())) select.push(`p.${ident(f.name)} AS ${ident(f.name)}`);
    else if (present.has(f.name.toLowerCase()))
      select.push(`CAST(d.${ident(f.name)} AS ${t}) AS ${ident(f.name)}`);
    else select.push(`CAST(NULL AS ${t}) AS ${ident(f.name)}`);
  }
  for (const c of fileCols) {
    select.push(
      present.has(c.name.toLowerCase())
        ? `CAST(d.${ident(c.name)} AS ${c.type}) AS ${ident(c.name)}`
        : `CAST(NULL AS ${c.type}) AS ${ident(c.name)}`,
    );
  }
  for (const c of constCols) select.push(`p.${ident(c.name)} AS ${ident(c.name)}`);
  if (opts.withFile) select.push(`d.${FILE_COL} AS ${FILE_COL}`);
  if (!needJoin) return `(SELECT ${select.join(', ')} FROM ${reader} AS d)`;
  const valueCols = [FILE_COL, ...partFields.map((f) => f.name), ...constCols.map((c) => c.name)];
  const rows = files.map((file) => {
    const vals = [
      literal(file.local),
      ...partFields.map((f) => partitionLiteral(f.type, pv(file.partitionValues, f.name))),
      ...constCols.map((c) => file.consts?.[c.name] ?? `CAST(NULL AS ${c.type})`),
    ];
    return `(${vals.join(', ')})`;
  });
  const values = `(VALUES ${rows.join(', ')}) AS p(${valueCols.map(ident).join(', ')})`;
  return `(SELECT ${select.join(', ')} FROM ${reader} AS d JOIN ${values} ON d.${FILE_COL} = p.${FILE_COL})`;
}
