import { test } from 'node:test';
import assert from 'node:assert/strict';
import { graphMermaid, graphText, pipelineGraph } from './graph.js';
import { detectionQueries, loadDetections } from '../detections/registry.js';

test('pipeline graph of the built-in detections', async () => {
  const g = pipelineGraph(detectionQueries(await loadDetections({}, { rulesDir: '/nonexistent' })));
  const queries = g.nodes.filter((n) => n.kind === 'query').map((n) => n.label);
  assert.deepEqual(queries, [
    'vulnerable_services',
    'new_logon_location.merge',
    'new_logon_location.alerts',
    'ioc_match',
    'ioc_retrohunt',
  ]);
  const has = (from: string, to: string, kind: string) =>
    g.edges.some((e) => e.from === from && e.to === to && e.kind === kind);
  // the seed's chain: UserLogon → merge → logon_locations (CDF) → alerts
  assert.ok(has('table:userlogon', 'query:new_logon_location.merge', 'stream'));
  assert.ok(has('query:new_logon_location.merge', 'table:logon_locations', 'sink'));
  assert.ok(has('table:logon_locations', 'query:new_logon_location.alerts', 'stream'));
  assert.ok(has('table:iocs', 'query:ioc_match', 'snapshot'));
  assert.ok(has('query:ioc_match', 'table:ioc_match_dedup_state', 'sink'));
  assert.ok(has('query:ioc_match', 'table:alerts', 'sink'));
  const mermaid = graphMermaid(g);
  assert.match(mermaid, /^flowchart LR/);
  assert.doesNotMatch(mermaid, /ioc <> ''/, 'operator text is escaped');
  assert.match(mermaid, /table_iocs -\.->\|snapshot\| query_ioc_match/);
  assert.match(graphText(g), /ioc_match {2}\[detection ioc_match\]\n {2}← stream {3}processrollup2/);
});
