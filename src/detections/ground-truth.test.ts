/**
 * The generator's ground truth, end to end: `generateFdr` → ingest (files source, bundled
 * enrichment) → `talon intel load iocs.csv` → detections → exactly the expected alerts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { generateFdr } from '../generate/index.js';
import { ingest } from '../ingest/pipeline.js';
import { FilesSource } from '../sources/files.js';
import { openTempLake } from '../engine/test-support.js';
import { Pipeline } from '../engine/pipeline.js';
import { listAlerts } from '../alerts/alerts.js';
import type { Alert } from '../alerts/alerts.js';
import { detectionQueries, loadDetections } from './registry.js';
import { csvIocsRelation } from '../intel/csv.js';
import { mergeIocs } from '../intel/iocs.js';

interface Truth {
  parameters: {
    vulnerable_ports: number[];
    known_servers: string[];
    learning_period: { days: number };
    ioc_dedup_window_hours: number;
  };
  alerts: {
    detection: string;
    aid: string;
    LocalPort?: number;
    UserName?: string;
    network?: string;
    ioc_type?: string;
    ioc?: string;
    event_time: string;
  }[];
}

/** One comparable line per alert: detection, entity and key, event time. */
function expectedKey(a: Truth['alerts'][number]): string {
  if (a.detection === 'vulnerable_services')
    return `vulnerable_services|${a.aid}|${a.LocalPort}|${a.event_time}`;
  if (a.detection === 'new_logon_location')
    return `new_logon_location|${a.UserName}|${a.network}|${a.event_time}`;
  return `ioc_match|${a.aid}|${a.ioc_type}|${a.ioc}|${a.event_time}`;
}

function actualKey(a: Alert): string {
  return `${a.detection}|${a.dedup_key}|${a.event_time}`;
}

test('generated data: the three detections raise exactly the ground-truth alerts', async () => {
  const t = await openTempLake('talon-truth-');
  try {
    const out = path.join(t.dir, 'fdr');
    await generateFdr({ out, events: 8_000, hosts: 20, days: 4, seed: 'truth-test' });
    const truth = JSON.parse(await readFile(path.join(out, 'ground-truth.json'), 'utf8')) as Truth;
    await ingest(t.lake, new FilesSource([out]), { progress: false });
    await mergeIocs(t.lake, await csvIocsRelation(t.lake.db, path.join(out, 'iocs.csv')));
    const p = truth.parameters;
    const set = await loadDetections(
      {
        vulnerable_ports: p.vulnerable_ports,
        known_servers: p.known_servers,
        learning_period: `${p.learning_period.days}d`,
        ioc_dedup_window: `${p.ioc_dedup_window_hours}h`,
        // The ground truth follows the seed's live matching (event time within the IoC's
        // validity); the retro-hunt deliberately looks before first_seen.
        disabled: ['ioc_retrohunt'],
      },
      { rulesDir: path.join(t.dir, 'no-rules') },
    );
    await new Pipeline(t.lake, detectionQueries(set)).runAvailableNow();
    const alerts = await listAlerts(t.lake);
    const expected = truth.alerts.map(expectedKey).sort();
    const actual = alerts.map(actualKey).sort();
    assert.ok(expected.length >= 3, `ground truth has alerts (${expected.length})`);
    for (const d of ['vulnerable_services', 'new_logon_location', 'ioc_match']) {
      assert.ok(
        expected.some((k) => k.startsWith(d)),
        `ground truth plants ${d}`,
      );
    }
    assert.deepEqual(actual, expected);
  } finally {
    await t.cleanup();
  }
});
