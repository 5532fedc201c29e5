export { Lake } from './lake.js';
export type { LakeOptions, TableSummary } from './lake.js';
export { ConcurrentModificationError, DeltaTable, PartialTxnError } from './table.js';
export type * from './table.js';
export type { ObjectStore, ObjectInfo } from './store.js';
