/**
 * Writes the rows of a query as a table's new Parquet files.
 *
 * DuckDB runs `COPY (query) TO <staging folder>` — split into several files for large
 * writes, and one file set per partition — so rows never pass through JS memory. Partition
 * columns are not stored in the files (Delta convention); DuckDB partitions the output by
 * hidden columns holding the Delta-serialized partition values, and the staging folder names
 * DuckDB writes (percent-encoded) give them back. Each finished file
 * gets its stats from its footer and is uploaded under a Hive-style folder of the table.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ident, literal } from '../sql/duckdb.js';
import type { ColumnInfo, Db } from '../sql/duckdb.js';
import type { AddAction } from './actions.js';
import { HIVE_NULL, partitionFolder, toLogPath } from './partition.js';
import { deltaTypeOfDuck, duckType, field, findField, writeType } from './schema.js';
import { parquetStats } from './stats.js';
import type { ObjectStore } from './store.js';
import type { DeltaType, StructField, StructType } from './table.js';

const PK = '__talon_pk';

export interface WriteTarget {
  store: ObjectStore;
  db: Db;
  tableKey: string;
  /** table schema (already merged with the incoming columns) */
  schema: StructType;
  partitionColumns: string[];
  /** '' for data files, '_change_data' for change data files */
  dir?: string;
  /** columns written as they are though not in the schema (`_change_type` of cdc files) */
  passThrough?: string[];
  dataChange: boolean;
  /** Parquet codec (table property delta.parquet.compression.codec); default zstd */
  codec?: string;
  /** target file size, bytes; default 256 MiB */
  fileSizeBytes?: number;
}

export interface WrittenFile extends AddAction {
  numRecords: number;
}

/** Text form of a partition value as Delta serializes it (protocol "Partition Value Serialization"). */
function partitionText(col: string, type: DeltaType): string {
  const c = `CAST(${ident(col)} AS ${duckType(type)})`;
  if (type === 'timestamp') return `strftime(${c}, '%Y-%m-%dT%H:%M:%S.%fZ')`;
  if (type === 'timestamp_ntz') return `strftime(${c}, '%Y-%m-%d %H:%M:%S.%f')`;
  if (type === 'binary')
    throw new Error(`partition column ${JSON.stringify(col)}: binary partition columns are not supported`);
  if (typeof type !== 'string')
    throw new Error(`partition column ${JSON.stringify(col)} must have a primitive type`);
  return `CAST(${c} AS VARCHAR)`;
}

export async function writeRelation(
  target: WriteTarget,
  relation: string,
  incoming: ColumnInfo[],
): Promise<WrittenFile[]> {
  const parts = target.partitionColumns;
  const partLower = new Set(parts.map((p) => p.toLowerCase()));
  const passLower = new Set((target.passThrough ?? []).map((p) => p.toLowerCase()));
  const select: string[] = [];
  const written: StructField[] = [];
  for (const col of incoming) {
    if (partLower.has(col.name.toLowerCase())) continue;
    if (passLower.has(col.name.toLowerCase())) {
      select.push(`CAST(${ident(col.name)} AS VARCHAR) AS ${ident(col.name)}`);
      continue;
    }
    const tableField = findField(target.schema, col.name);
    if (!tableField) throw new Error(`internal: column ${col.name} missing from the merged schema`);
    const t = writeType(tableField.type, deltaTypeOfDuck(col.type, col.name));
    select.push(`CAST(${ident(col.name)} AS ${duckType(t)}) AS ${ident(tableField.name)}`);
    written.push(field(tableField.name, t));
  }
  if (select.length === 0) select.push('CAST(NULL AS VARCHAR) AS __talon_no_columns');
  const incomingLower = new Set(incoming.map((c) => c.name.toLowerCase()));
  const partExprs = parts.map((p) => {
    const f = findField(target.schema, p);
    if (!f) throw new Error(`partition column ${JSON.stringify(p)} is not in the table schema`);
    return incomingLower.has(p.toLowerCase()) ? partitionText(p, f.type) : 'CAST(NULL AS VARCHAR)';
  });
  const staging = await target.store.stagingPath('write');
  await fs.mkdir(staging, { recursive: true });
  try {
    const codec = (target.codec ?? 'zstd').toLowerCase();
    const options = [
      `FORMAT parquet`,
      `COMPRESSION ${codec === 'none' ? 'uncompressed' : codec}`,
      `FILENAME_PATTERN 'part-{uuid}'`,
    ];
    let projection = select.join(', ');
    if (parts.length > 0) {
      // 'v' marks a present value, so a NULL (DuckDB's __HIVE_DEFAULT_PARTITION__ folder) can
      // never be confused with a string that happens to spell that name.
      projection += ', ' + partExprs.map((e, i) => `'v' || ${e} AS ${PK}${i}`).join(', ');
      options.push(`PARTITION_BY (${parts.map((_, i) => `${PK}${i}`).join(', ')})`);
    } else {
      options.push(`FILE_SIZE_BYTES ${Math.max(1 << 20, target.fileSizeBytes ?? 256 * 1024 * 1024)}`);
    }
    await target.db.run(
      `COPY (SELECT ${projection} FROM (${relation}) AS __talon_src) TO ${literal(staging)} (${options.join(', ')})`,
    );
    const locals = await listFiles(staging);
    const stats = await parquetStats(target.db, locals, written);
    const out: WrittenFile[] = [];
    for (const local of locals) {
      const st = stats.get(local)!;
      if (st.numRecords === 0) continue;
      let values: Record<string, string | null> = {};
      if (parts.length > 0) {
        values = partitionValuesOf(path.relative(staging, local), parts);
      }
      const folder = parts.length > 0 ? partitionFolder(parts, values) + '/' : '';
      const codecTag = codec === 'none' || codec === 'uncompressed' ? '' : `.${codec}`;
      const name = `${target.dir ? 'cdc' : 'part'}-00000-${randomUUID()}.c000${codecTag}.parquet`;
      const relative = `${target.dir ? target.dir + '/' : ''}${folder}${name}`;
      const size = (await fs.stat(local)).size;
      await target.store.upload(local, `${target.tableKey}/${relative}`);
      out.push({
        path: toLogPath(relative),
        partitionValues: values,
        size,
        modificationTime: Date.now(),
        dataChange: target.dataChange,
        stats: target.dir ? undefined : JSON.stringify(st),
        numRecords: st.numRecords,
      });
    }
    return out;
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

/** Reads back the partition values from DuckDB's `__talon_pk0=v…/__talon_pk1=v…/` folders. */
function partitionValuesOf(relative: string, parts: string[]): Record<string, string | null> {
  const values: Record<string, string | null> = {};
  for (const seg of relative.split(path.sep).slice(0, -1)) {
    const m = new RegExp(`^${PK}(\\d+)=(.*)$`).exec(seg);
    if (!m) throw new Error(`internal: unexpected staging folder ${seg}`);
    const raw = m[2];
    // DuckDB percent-encodes partition values in folder names; NULL is Hive's default partition.
    values[parts[Number(m[1])]] = raw === HIVE_NULL ? null : decodeURIComponent(raw).slice(1);
  }
  for (const p of parts)
    if (!(p in values)) throw new Error(`internal: no folder for partition column ${p} in ${relative}`);
  return values;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (e.name.endsWith('.parquet')) out.push(p);
  }
  return out.sort();
}
