/**
 * One call for commands that just want "run every enabled detection on what is there now"
 * (`talon demo`, `talon run`, tests): the config's `detect` section, rule files included.
 */
import type { TalonConfig } from '../config/config.js';
import type { Lake } from '../lake/lake.js';
import { Pipeline } from '../engine/pipeline.js';
import type { PipelineRunOptions } from '../engine/pipeline.js';
import type { BatchReport } from '../engine/query.js';
import type { Trigger } from '../engine/trigger.js';
import { detectionQueries, loadDetections } from './registry.js';

export { BUILT_IN_DETECTIONS, detectionQueries, loadDetections } from './registry.js';
export type { Detection, DetectSettings } from './detection.js';

export async function runDetections(
  lake: Lake,
  detect: Partial<TalonConfig['detect']> = {},
  opts: PipelineRunOptions & { trigger?: Trigger; only?: string[]; rulesDir?: string } = {},
): Promise<BatchReport[]> {
  const set = await loadDetections(detect, { only: opts.only, rulesDir: opts.rulesDir });
  const pipeline = new Pipeline(lake, detectionQueries(set), {
    maxVersionsPerBatch: detect.max_versions_per_batch,
    maxRowsPerBatch: detect.max_rows_per_batch,
    retainBatches: detect.checkpoint_retain_batches,
    autoCompactFiles: detect.auto_compact_files,
  });
  return pipeline.run(opts.trigger ?? { kind: 'available-now' }, opts);
}
