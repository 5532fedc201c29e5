/**
 * Which detections run: the three built-ins (the seed's) and the enabled rule files, minus
 * those disabled in config, optionally narrowed to one id.
 */
import type { TalonConfig } from '../config/config.js';
import type { QueryDefinition } from '../engine/query.js';
import type { Detection, DetectSettings } from './detection.js';
import { detectSettings } from './detection.js';
import { vulnerableServices } from './vulnerable-services.js';
import { newLogonLocation } from './new-logon-location.js';
import { iocMatch } from './ioc-match.js';
import { iocRetroHunt } from './retrohunt.js';
import { loadRuleFile, ruleDetection, ruleFiles } from './rules.js';

export const BUILT_IN_DETECTIONS: Detection[] = [
  vulnerableServices,
  newLogonLocation,
  iocMatch,
  iocRetroHunt,
];

export interface DetectionSet {
  detections: Detection[];
  settings: DetectSettings;
}

export async function loadDetections(
  detect: Partial<TalonConfig['detect']> = {},
  opts: { only?: string[]; rulesDir?: string } = {},
): Promise<DetectionSet> {
  const settings = detectSettings(detect);
  const all: Detection[] = [...BUILT_IN_DETECTIONS];
  for (const file of await ruleFiles(opts.rulesDir ?? detect.rules_dir ?? 'rules')) {
    const rule = await loadRuleFile(file);
    if (!rule.enabled) continue;
    if (all.some((d) => d.id === rule.id))
      throw new Error(`${file}: detection id '${rule.id}' is already defined`);
    all.push(ruleDetection(rule, file));
  }
  const disabled = new Set(detect.disabled ?? []);
  let detections = all.filter((d) => !disabled.has(d.id));
  if (opts.only && opts.only.length) {
    const unknown = opts.only.filter((id) => !all.some((d) => d.id === id));
    if (unknown.length) {
      throw new Error(
        `unknown detection(s): ${unknown.join(', ')} (known: ${all.map((d) => d.id).join(', ')})`,
      );
    }
    detections = all.filter((d) => opts.only!.includes(d.id));
  }
  return { detections, settings };
}

export function detectionQueries(set: DetectionSet): QueryDefinition[] {
  const queries = set.detections.flatMap((d) => d.queries(set.settings));
  // One lateness for every stateful operator, unless a detection chose its own.
  for (const q of queries) q.allowedLatenessMs ??= set.settings.allowedLatenessMs;
  return queries;
}
