/**
 * Delta log actions (protocol "Actions") and the reader/writer features Talon implements.
 */
import type { AddFile } from './table.js';

export interface ProtocolAction {
  minReaderVersion: number;
  minWriterVersion: number;
  readerFeatures?: string[];
  writerFeatures?: string[];
}

export interface MetaDataAction {
  id: string;
  name?: string | null;
  description?: string | null;
  format: { provider: string; options: Record<string, string> };
  schemaString: string;
  partitionColumns: string[];
  createdTime?: number | null;
  configuration: Record<string, string>;
}

export interface TxnAction {
  appId: string;
  version: number;
  lastUpdated?: number | null;
}

export interface DeletionVectorDescriptor {
  storageType: string;
  pathOrInlineDv: string;
  offset?: number;
  sizeInBytes: number;
  cardinality: number;
}

export interface AddAction extends AddFile {
  deletionVector?: DeletionVectorDescriptor | null;
  baseRowId?: number | null;
  defaultRowCommitVersion?: number | null;
}

export interface RemoveAction {
  path: string;
  deletionTimestamp?: number | null;
  dataChange: boolean;
  extendedFileMetadata?: boolean | null;
  partitionValues?: Record<string, string | null> | null;
  size?: number | null;
  stats?: string | null;
  tags?: Record<string, string> | null;
  deletionVector?: DeletionVectorDescriptor | null;
}

export interface CdcAction {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  dataChange: boolean;
  tags?: Record<string, string> | null;
}

export interface CommitInfoAction {
  timestamp?: number;
  inCommitTimestamp?: number;
  operation?: string;
  operationParameters?: Record<string, unknown>;
  operationMetrics?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Action {
  add?: AddAction;
  remove?: RemoveAction;
  metaData?: MetaDataAction;
  protocol?: ProtocolAction;
  txn?: TxnAction;
  cdc?: CdcAction;
  commitInfo?: CommitInfoAction;
  [other: string]: unknown;
}

/** Reader features Talon reads correctly. */
// typeWidening: every column is cast to the table's (wider) type on read, so files written
// before a widening read correctly.
export const SUPPORTED_READER_FEATURES = new Set([
  'timestampNtz',
  'vacuumProtocolCheck',
  'v2Checkpoint',
  'typeWidening',
  'typeWidening-preview',
]);

/** Writer features whose rules Talon follows (or that need nothing from a writer like Talon). */
export const SUPPORTED_WRITER_FEATURES = new Set([
  'appendOnly',
  'invariants',
  'changeDataFeed',
  'timestampNtz',
  'vacuumProtocolCheck',
  'domainMetadata',
  'v2Checkpoint',
  'typeWidening',
  'typeWidening-preview',
]);

/** Thrown for tables that need a protocol feature Talon lacks: reading them could give wrong rows. */
export class UnsupportedFeatureError extends Error {
  constructor(
    readonly feature: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnsupportedFeatureError';
  }
}

/** Refuses tables Talon cannot read correctly; the message names the missing feature. */
export function checkReadable(
  table: string,
  protocol: ProtocolAction,
  metaData: MetaDataAction | undefined,
): void {
  const rv = protocol.minReaderVersion;
  if (rv > 3) {
    throw new UnsupportedFeatureError(
      `readerVersion${rv}`,
      `table ${table} needs Delta reader version ${rv}; Talon reads versions 1–3`,
    );
  }
  const mode = metaData?.configuration?.['delta.columnMapping.mode'];
  if (rv === 2 && mode && mode !== 'none') {
    throw new UnsupportedFeatureError(
      'columnMapping',
      `table ${table} uses the Delta reader feature columnMapping (mode ${mode}), which Talon does not support`,
    );
  }
  if (rv === 3) {
    for (const f of protocol.readerFeatures ?? []) {
      if (f === 'columnMapping' && (!mode || mode === 'none')) continue;
      if (!SUPPORTED_READER_FEATURES.has(f)) {
        throw new UnsupportedFeatureError(
          f,
          `table ${table} uses the Delta reader feature ${f}, which Talon does not support`,
        );
      }
    }
  }
}

/** Refuses writes to tables whose writer rules Talon does not follow. */
export function checkWritable(
  table: string,
  protocol: ProtocolAction,
  metaData: MetaDataAction | undefined,
): void {
  checkReadable(table, protocol, metaData);
  const wv = protocol.minWriterVersion;
  if (wv > 7) {
    throw new UnsupportedFeatureError(
      `writerVersion${wv}`,
      `table ${table} needs Delta writer version ${wv}; Talon writes versions 1–7`,
    );
  }
  const mode = metaData?.configuration?.['delta.columnMapping.mode'];
  if ((wv === 5 || wv === 6) && mode && mode !== 'none') {
    throw new UnsupportedFeatureError(
      'columnMapping',
      `table ${table} uses column mapping, which Talon cannot write`,
    );
  }
  if (wv === 6) {
    // Identity columns need generated values Talon does not produce.
    const schema = metaData?.schemaString ?? '';
    if (schema.includes('delta.identity.')) {
      throw new UnsupportedFeatureError(
        'identityColumns',
        `table ${table} has identity columns, which Talon cannot write`,
      );
    }
  }
  if (wv >= 4 && wv < 7 && (metaData?.schemaString ?? '').includes('delta.generationExpression')) {
    throw new UnsupportedFeatureError(
      'generatedColumns',
      `table ${table} has generated columns, which Talon cannot write`,
    );
  }
  // Column invariants and CHECK constraints are SQL Talon does not evaluate: refuse to write
  // rather than commit rows that might break them.
  if (wv >= 2 && (metaData?.schemaString ?? '').includes('delta.invariants')) {
    throw new UnsupportedFeatureError(
      'invariants',
      `table ${table} has column invariants, which Talon cannot enforce`,
    );
  }
  if (wv >= 3 && Object.keys(metaData?.configuration ?? {}).some((k) => k.startsWith('delta.constraints.'))) {
    throw new UnsupportedFeatureError(
      'checkConstraints',
      `table ${table} has CHECK constraints, which Talon cannot enforce`,
    );
  }
  if (wv === 7) {
    for (const f of protocol.writerFeatures ?? []) {
      if (!SUPPORTED_WRITER_FEATURES.has(f)) {
        throw new UnsupportedFeatureError(
          f,
          `table ${table} uses the Delta writer feature ${f}, which Talon cannot write`,
        );
      }
    }
  }
}

export function isAppendOnly(metaData: MetaDataAction): boolean {
  return metaData.configuration?.['delta.appendOnly'] === 'true';
}

export function cdfEnabled(metaData: MetaDataAction): boolean {
  return metaData.configuration?.['delta.enableChangeDataFeed'] === 'true';
}

/** The logical file key: path + deletion vector id (protocol "Action Reconciliation"). */
export function fileKey(a: { path: string; deletionVector?: DeletionVectorDescriptor | null }): string {
  const dv = a.deletionVector;
  if (!dv) return a.path;
  return `${a.path}\u0000${dv.storageType}${dv.pathOrInlineDv}${dv.offset === undefined || dv.offset === null ? '' : '@' + dv.offset}`;
}

/** Drops JSON nulls DuckDB's `to_json` puts in for absent struct fields. */
export function stripNulls<T>(o: T): T {
  if (o && typeof o === 'object' && !Array.isArray(o)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      if (v === null && k !== 'partitionValues') continue;
      out[k] = k === 'partitionValues' || k === 'configuration' ? v : stripNulls(v);
    }
    return out as T;
  }
  return o;
}
