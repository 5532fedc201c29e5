/**
 * Host context: FDR's aidmaster secondary data maps a sensor id (aid) to its ComputerName.
 * A host appears several times over time; the latest row wins.
 */
import type { MicroBatch } from '../engine/batch.js';
import { ident } from '../sql/duckdb.js';

export const AIDMASTER = 'aidmaster';

/** A relation (aid, ComputerName), one row per aid; undefined when aidmaster is absent. */
export async function hostNames(batch: MicroBatch): Promise<string | undefined> {
  const snap = await batch.snapshot(AIDMASTER);
  if (!snap) return undefined;
  const cols = await batch.columns(snap);
  const aid = cols.get('aid');
  const name = cols.get('computername');
  if (!aid || !name) return undefined;
  const order = ['timestamp', 'agentlocaltime', 'firstseen']
    .map((c) => cols.get(c))
    .find((c) => c !== undefined);
  const pick = order ? `arg_max(${ident(name)}, ${ident(order)})` : `max(${ident(name)})`;
  return batch.temp(
    'hosts',
    `SELECT CAST(${ident(aid)} AS VARCHAR) AS aid, CAST(${pick} AS VARCHAR) AS ComputerName FROM ${snap} h
     WHERE ${ident(name)} IS NOT NULL GROUP BY 1`,
  );
}
