/**
 * The `ioc_sources` table: one row per (dataset, ioc_type, ioc) — every feed's own view of
 * an IoC: ioc_id, first/last sighting, end of validity, confidence, tags, description,
 * reference, allow_listed (same rule as `iocs`), loaded_at (when the row last changed).
 * first_seen keeps the feed's earliest sighting; the other fields take the newest load.
 */
import type { UpsertSpec } from './upsert.js';
import { timestampSql } from './upsert.js';

export const IOC_SOURCES_TABLE = 'ioc_sources';

export function iocSourcesSpec(now: Date): UpsertSpec {
  const ts = timestampSql(now);
  return {
    table: IOC_SOURCES_TABLE,
    keys: ['dataset', 'ioc_type', 'ioc'],
    create: {
      properties: { 'delta.parquet.compression.codec': 'snappy' },
      description: 'Threat-intel IoCs per feed (dataset): validity, confidence, tags, allow-list flag',
    },
    columns: [
      { name: 'dataset', type: 'VARCHAR' },
      { name: 'ioc_type', type: 'VARCHAR' },
      { name: 'ioc', type: 'VARCHAR' },
      { name: 'ioc_id', type: 'VARCHAR' },
      {
        name: 'first_seen',
        type: 'TIMESTAMP',
        merged: 'least(coalesce(n.first_seen, c.first_seen), coalesce(c.first_seen, n.first_seen))',
      },
      { name: 'last_seen', type: 'TIMESTAMP' },
      { name: 'valid_until', type: 'TIMESTAMP' },
      { name: 'confidence', type: 'DOUBLE' },
      { name: 'tags', type: 'VARCHAR[]' },
      { name: 'description', type: 'VARCHAR' },
      { name: 'reference', type: 'VARCHAR' },
      {
        name: 'allow_listed',
        type: 'BOOLEAN',
        inserted: 'coalesce(n.allow_listed, false)',
        merged: 'coalesce(n.allow_listed, c.allow_listed, false)',
      },
      { name: 'loaded_at', type: 'TIMESTAMP', inserted: ts, merged: ts, compare: false },
    ],
  };
}
