export { Lake } from './lake.js';
export type { LakeOptions, TableSummary } from './lake.js';
export { DeltaTable } from './table.js';
export type * from './table.js';
export type { ObjectStore, ObjectInfo } from './store.js';
