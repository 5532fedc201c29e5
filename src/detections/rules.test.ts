import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Db } from '../sql/duckdb.js';
import { loadRuleFile, parseRule, ruleFiles, runRuleTests } from './rules.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('rule validation names the bad key', () => {
  assert.throws(
    () => parseRule('id: x\ntitle: t\nseverity: urgent\nsources: [A]\nsql: select 1', 'r.yaml'),
    /r\.yaml: severity: /,
  );
  assert.throws(
    () =>
      parseRule(
        'id: x\ntitle: t\nseverity: low\nsources: [A]\nsql: s\ndedup: {key: [a], window: 1 day}',
        'r.yaml',
      ),
    /dedup\.window: invalid duration/,
  );
  assert.throws(() => parseRule('id: x\ntitle: t\nseverity: low\nsql: s', 'r.yaml'), /sources/);
  assert.throws(
    () => parseRule('id: x\ntitle: t\nseverity: low\nsources: [A]\nsql: s\nbogus: 1', 'r.yaml'),
    /bogus/,
  );
  assert.throws(() => parseRule('id: [', 'r.yaml'), /not valid YAML/);
});

test('shipped rule files pass their inline tests', async () => {
  const files = await ruleFiles(path.join(repoRoot, 'rules'));
  assert.ok(files.length >= 1);
  const db = await Db.open({ threads: 1 });
  try {
    for (const f of files) {
      const results = await runRuleTests(db, await loadRuleFile(f), f);
      assert.ok(results.length > 0, `${f} has tests`);
      for (const r of results) assert.ok(r.ok, `${r.rule} › ${r.test}: ${r.message}`);
    }
  } finally {
    db.close();
  }
});

test('threshold, window and wrong expectations are reported', async () => {
  const rule = parseRule(`
id: many_failures
title: Many failed logons
severity: high
sources: [UserLogonFailed2]
sql: SELECT timestamp, aid, UserName FROM userlogonfailed2
dedup: { key: [UserName], window: 1h }
threshold: 3
tests:
  - name: three in one hour alert, two in the next do not
    events:
      UserLogonFailed2:
        - { timestamp: "2026-01-01T10:01:00Z", aid: a, UserName: bob }
        - { timestamp: "2026-01-01T10:02:00Z", aid: a, UserName: bob }
        - { timestamp: "2026-01-01T10:59:00Z", aid: a, UserName: bob }
        - { timestamp: "2026-01-01T11:00:00Z", aid: a, UserName: bob }
        - { timestamp: "2026-01-01T11:01:00Z", aid: a, UserName: bob }
    expect: { alerts: 1, match: [{ user: bob, dedup_key: bob }] }
  - name: deliberately wrong
    events:
      UserLogonFailed2:
        - { timestamp: "2026-01-01T10:01:00Z", aid: a, UserName: bob }
    expect: { alerts: 1 }
`);
  const db = await Db.open({ threads: 1 });
  try {
    const [ok, wrong] = await runRuleTests(db, rule, 'inline');
    assert.equal(ok.ok, true, ok.message);
    assert.equal(wrong.ok, false);
    assert.match(wrong.message ?? '', /expected 1 alert\(s\), got 0/);
  } finally {
    db.close();
  }
});

test('a rule whose source table appears later reads the other sources from their first version', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const os = await import('node:os');
  const { openTempLake, appendEvents } = await import('../engine/test-support.js');
  const { Pipeline } = await import('../engine/pipeline.js');
  const { detectionQueries, loadDetections } = await import('./registry.js');
  const { listAlerts } = await import('../alerts/alerts.js');
  const t = await openTempLake();
  const rulesDir = await mkdtemp(path.join(os.tmpdir(), 'talon-rules-'));
  try {
    await writeFile(
      path.join(rulesDir, 'dns_then_connect.yaml'),
      `id: dns_then_connect
title: Connection to a freshly resolved address
severity: low
sources: [DnsRequest, NetworkConnectIP4]
sql: |
  SELECT c.timestamp, c.aid, d.DomainName
  FROM networkconnectip4 c JOIN dnsrequest d ON d.aid = c.aid AND d.FirstIP4Record = c.RemoteAddressIP4
dedup: { key: [aid, DomainName], window: 1h }
`,
    );
    const run = async () => {
      const set = await loadDetections({}, { only: ['dns_then_connect'], rulesDir });
      return new Pipeline(t.lake, detectionQueries(set)).runAvailableNow();
    };
    const T = Date.UTC(2026, 0, 5, 10);
    await appendEvents(t.lake, 'NetworkConnectIP4', [
      { aid: 'a1', RemoteAddressIP4: '198.51.100.7', timestamp: T + 1000 },
    ]);
    assert.deepEqual(await run(), [], 'DnsRequest does not exist yet: no batch, nothing consumed');
    await appendEvents(t.lake, 'DnsRequest', [
      { aid: 'a1', DomainName: 'evil.example', FirstIP4Record: '198.51.100.7', timestamp: T },
    ]);
    const reports = await run();
    assert.equal(reports.length, 1);
    assert.deepEqual(reports[0].sources.networkconnectip4, { start: -1, end: 1 });
    const alerts = await listAlerts(t.lake);
    assert.deepEqual(
      alerts.map((a) => [a.detection, a.dedup_key]),
      [['dns_then_connect', 'a1|evil.example']],
    );
  } finally {
    await t.cleanup();
    await rm(rulesDir, { recursive: true, force: true });
  }
});
