/**
 * A writer process for the lake's multi-process tests (concurrent appends, kill -9 before
 * commit). Not part of Talon's API.
 *
 * Usage: node test-writer-child.js <lakeDir> <table> <appId> <firstBatch> <batches> <rowsPerBatch>
 * Appends `batches` batches; batch b has ids b*rowsPerBatch … and txn (appId, b).
 */
import { Lake } from './lake.js';

async function main(): Promise<void> {
  const [lakeDir, table, appId, first, batches, rows] = process.argv.slice(2);
  const lake = await Lake.open(lakeDir);
  try {
    const t = await lake.createTable(table, { partitionColumns: ['part'] });
    for (let b = Number(first); b < Number(first) + Number(batches); b++) {
      const base = b * Number(rows);
      const res = await t.append(
        `SELECT CAST(range + ${base} AS BIGINT) AS id, '${appId}' AS writer, CAST(range % 2 AS INTEGER) AS part
           FROM range(${Number(rows)})`,
        { txn: { appId, version: b } },
      );
      process.stdout.write(`batch ${b} -> version ${res.version}${res.skipped ? ' (skipped)' : ''}\n`);
    }
  } finally {
    lake.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
