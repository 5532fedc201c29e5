/**
 * Classic (V1 spec, single-file) Parquet checkpoints, written through DuckDB.
 *
 * The actions are written as NDJSON and turned into Parquet by `read_json` with explicit
 * column types, so the file has exactly the struct columns the protocol's checkpoint schema
 * names (`txn`, `add`, `remove`, `metaData`, `protocol`; `add.stats` as a JSON string) and
 * Spark, Trino or delta-rs can read it. Tombstones are kept until they expire
 * (`delta.deletedFileRetentionDuration`, default one week); commitInfo and cdc are not kept.
 */
import * as fs from 'node:fs/promises';
import { literal } from '../sql/duckdb.js';
import type { Db } from '../sql/duckdb.js';
import { fileKey } from './actions.js';
import type { DeltaLog, TableState } from './log.js';
import { parseInterval } from './interval.js';
import { versionName } from './log.js';
import type { ObjectStore } from './store.js';

const MAP = 'MAP(VARCHAR, VARCHAR)';
const COLUMNS: Record<string, string> = {
  txn: 'STRUCT(appId VARCHAR, version BIGINT, lastUpdated BIGINT)',
  add:
    `STRUCT(path VARCHAR, partitionValues ${MAP}, size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, ` +
    `stats VARCHAR, tags ${MAP}, baseRowId BIGINT, defaultRowCommitVersion BIGINT)`,
  remove:
    `STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN, extendedFileMetadata BOOLEAN, ` +
    `partitionValues ${MAP}, size BIGINT)`,
  metaData:
    `STRUCT(id VARCHAR, name VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, options ${MAP}), ` +
    `schemaString VARCHAR, partitionColumns VARCHAR[], configuration ${MAP}, createdTime BIGINT)`,
  protocol:
    'STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER, readerFeatures VARCHAR[], writerFeatures VARCHAR[])',
};

export { parseInterval } from './interval.js';

export async function writeCheckpoint(
  store: ObjectStore,
  db: Db,
  logPrefix: string,
  state: TableState,
): Promise<void> {
  const retention = parseInterval(
    state.metaData.configuration?.['delta.deletedFileRetentionDuration'],
    7 * 8.64e7,
  );
  const cutoff = Date.now() - retention;
  const lines: string[] = [];
  lines.push(JSON.stringify({ protocol: state.protocol }));
  lines.push(JSON.stringify({ metaData: state.metaData }));
  for (const t of state.txns.values()) lines.push(JSON.stringify({ txn: t }));
  for (const a of state.files.values()) {
    lines.push(
      JSON.stringify({
        add: {
          path: a.path,
          partitionValues: a.partitionValues ?? {},
          size: a.size,
          modificationTime: a.modificationTime,
          dataChange: false,
          stats: a.stats ?? null,
          tags: a.tags ?? null,
          baseRowId: a.baseRowId ?? null,
          defaultRowCommitVersion: a.defaultRowCommitVersion ?? null,
        },
      }),
    );
  }
  for (const [k, r] of state.tombstones) {
    if ((r.deletionTimestamp ?? 0) <= cutoff || state.files.has(k) || k !== fileKey(r)) continue;
    lines.push(
      JSON.stringify({
        remove: {
          path: r.path,
          deletionTimestamp: r.deletionTimestamp ?? null,
          dataChange: false,
          extendedFileMetadata: r.extendedFileMetadata ?? null,
          partitionValues: r.partitionValues ?? null,
          size: r.size ?? null,
        },
      }),
    );
  }
  const json = await store.stagingPath('checkpoint.json');
  const parquet = await store.stagingPath('checkpoint.parquet');
  try {
    await fs.writeFile(json, lines.join('\n') + '\n');
    const cols = Object.entries(COLUMNS)
      .map(([k, v]) => `${k}: ${literal(v)}`)
      .join(', ');
    await db.run(
      `COPY (SELECT txn, add, remove, metaData, protocol FROM read_json(${literal(json)}, columns = {${cols}}, format = 'newline_delimited'))
         TO ${literal(parquet)} (FORMAT parquet, COMPRESSION snappy)`,
    );
    const size = (await fs.stat(parquet)).size;
    await store.upload(parquet, `${logPrefix}/${versionName(state.version)}.checkpoint.parquet`);
    await store.put(
      `${logPrefix}/_last_checkpoint`,
      JSON.stringify({
        version: state.version,
        size: lines.length,
        sizeInBytes: size,
        numOfAddFiles: state.files.size,
      }),
    );
  } finally {
    await fs.rm(json, { force: true });
    await fs.rm(parquet, { force: true });
  }
}

/**
 * Metadata cleanup (protocol "Metadata Cleanup"): once a checkpoint is older than the log
 * retention (`delta.logRetentionDuration`, default 30 days), the commits and checkpoints
 * before it are deleted — the checkpoint and its own commit stay, so every version from
 * there on can still be read. Keeps `_delta_log/` (and its listing) from growing forever.
 * Off when `delta.enableExpiredLogCleanup` is `false`. Returns the deleted keys.
 */
export async function cleanupExpiredLogs(
  log: DeltaLog,
  state: TableState,
  now = Date.now(),
): Promise<string[]> {
  const conf = state.metaData.configuration ?? {};
  if (conf['delta.enableExpiredLogCleanup'] === 'false') return [];
  const cutoff = now - parseInterval(conf['delta.logRetentionDuration'], 30 * 8.64e7);
  const listing = await log.list();
  let cutoffCheckpoint: number | undefined;
  for (const cp of listing.checkpoints) {
    if (cp.version > state.version || !listing.commits.has(cp.version)) continue;
    if ((await log.commitTimestamp(cp.version, listing.commits.get(cp.version))) <= cutoff) {
      cutoffCheckpoint = cp.version;
      break; // checkpoints are sorted newest first
    }
  }
  if (cutoffCheckpoint === undefined) return [];
  const doomed: string[] = [];
  for (const [v, info] of listing.commits) if (v < cutoffCheckpoint) doomed.push(info.key);
  for (const cp of listing.checkpoints) if (cp.version < cutoffCheckpoint) doomed.push(...cp.keys);
  doomed.sort();
  if (doomed.length > 0) await log.store.delete(doomed);
  return doomed;
}
