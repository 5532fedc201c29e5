/**
 * notify.deliveries_retention: settled delivery history older than the retention leaves the
 * `deliveries` table; deliveries not done (pending, retrying) stay whatever their age.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openTempLake } from '../engine/test-support.js';
import { HttpReceiver } from '../testing/http-receiver.js';
import { commitAlerts, makeAlert } from './test-support.js';
import { Notifier, runNotifier } from './notifier.js';
import { notifySchema } from './settings.js';
import {
  DELIVERIES_TABLE,
  DeliveryLog,
  RETENTION_APP_ID,
  pairKey,
  type DeliveryRecord,
  type DeliveryStatus,
} from './deliveries.js';
import type { Lake } from '../lake/lake.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1, 12, 30);
const iso = (ms: number) => new Date(ms).toISOString();

function row(
  alert: string,
  status: DeliveryStatus,
  sentAt: number,
  over: Partial<DeliveryRecord> = {},
): DeliveryRecord {
  return {
    alert_id: alert,
    destination: 'soc',
    kind: 'alert',
    message_id: alert,
    attempt: 1,
    status,
    http_status: status === 'sent' ? 200 : 503,
    reply: null,
    error: null,
    response: null,
    detection: 'vulnerable_service',
    entity: 'host-1',
    alert_time: iso(sentAt - 60_000),
    sent_at: iso(sentAt),
    suppressed_by: null,
    ...over,
  };
}

async function operations(lake: Lake): Promise<string[]> {
  const t = await lake.table(DELIVERIES_TABLE);
  return (await t!.history()).map((h) => h.operation ?? '?').reverse();
}

async function remaining(log: DeliveryLog): Promise<string[]> {
  return (await log.all()).map((r) => `${String(r.alert_id)}/${String(r.kind)}:${String(r.status)}`).sort();
}

test('retention deletes settled pairs older than the retention, keeps pending, retrying and recent ones', async () => {
  const { lake, cleanup } = await openTempLake('talon-notify-retention-');
  try {
    const log = new DeliveryLog(lake);
    const old = NOW - 40 * DAY;
    const recent = NOW - 2 * DAY;
    // Several commits, as the notifier records them (one per round): many small files.
    await log.record([row('sent-old', 'retrying', old), row('sent-old', 'sent', old + 5000, { attempt: 2 })]);
    await log.record([row('dead-old', 'dead_letter', old, { attempt: 5 })]);
    await log.record([row('failed-old', 'failed', old)]);
    await log.record([row('suppressed-old', 'suppressed', old, { suppressed_by: 'sent-old' })]);
    // A digest that went out: its pending row is closed by the sent row.
    await log.record([row('digest-old', 'pending', old), row('digest-old', 'sent', old + 60_000)]);
    // Not done, however old: held for a digest, or still being retried.
    await log.record([row('held-old', 'pending', old, { reply: 'folded:2' })]);
    await log.record([row('retry-old', 'retrying', old)]);
    // Settled but recent; and a pair whose first attempt is old but which settled recently.
    await log.record([row('sent-recent', 'sent', recent)]);
    await log.record([row('late', 'retrying', old), row('late', 'sent', recent, { attempt: 2 })]);
    // The same alert's resolve is its own pair: old and settled, while its alert pair is recent.
    await log.record([
      row('sent-recent', 'sent', old, { kind: 'resolve' }),
      row('held-old', 'sent', old, { kind: 'resolve' }),
    ]);
    const filesBefore = (await (await lake.table(DELIVERIES_TABLE))!.snapshot()).files.length;
    assert.ok(filesBefore >= 10);

    const r = await log.applyRetention(30 * DAY, NOW);
    assert.equal(r.ran, true);
    assert.equal(r.pairs, 7);
    assert.equal(r.deletedRows, 9);
    assert.deepEqual(await remaining(log), [
      'held-old/alert:pending',
      'late/alert:retrying',
      'late/alert:sent',
      'retry-old/alert:retrying',
      'sent-recent/alert:sent',
    ]);
    // The held digest is still held, and what was settled recently still counts as settled.
    assert.deepEqual(
      (await log.pending()).map((p) => [p.alertId, p.folded]),
      [['held-old', 2]],
    );
    const finished = await log.finished(['late', 'sent-recent', 'retry-old', 'held-old']);
    assert.deepEqual(
      [...finished].sort(),
      [pairKey('late', 'soc', 'alert'), pairKey('sent-recent', 'soc', 'alert')].sort(),
    );
    // Delete, then the compaction: the remaining rows end up in one file.
    const t = (await lake.table(DELIVERIES_TABLE))!;
    assert.deepEqual((await operations(lake)).slice(-2), ['DELETE', 'OPTIMIZE']);
    assert.equal((await t.snapshot()).files.length, 1);
    assert.equal(await t.txnVersion(RETENTION_APP_ID), Math.floor(NOW / 3_600_000));

    // Once per hour: later in the same hour nothing runs; the next hour runs (nothing expired
    // then, but the run is recorded, so other processes skip that hour too).
    const versionBefore = (await t.snapshot()).version;
    const again = await log.applyRetention(30 * DAY, NOW + 20 * 60_000);
    assert.equal(again.ran, false);
    assert.equal((await t.snapshot()).version, versionBefore);
    const next = await log.applyRetention(30 * DAY, NOW + 3_600_000);
    assert.equal(next.ran, true);
    assert.equal(next.deletedRows, 0);
    assert.equal(await t.txnVersion(RETENTION_APP_ID), Math.floor(NOW / 3_600_000) + 1);
    assert.equal((await remaining(log)).length, 5);
  } finally {
    await cleanup();
  }
});

test('the notifier applies notify.deliveries_retention after a batch, once per hour; 0 keeps everything', async () => {
  const { lake, cleanup } = await openTempLake('talon-notify-retention-');
  const hook = await HttpReceiver.start();
  try {
    const config = notifySchema.parse({
      destinations: [{ name: 'soc', type: 'webhook', url: hook.url('/soc') }],
      deliveries_retention: '7d',
    });
    assert.equal(notifySchema.parse({}).deliveries_retention, '30d');
    await commitAlerts(lake, [makeAlert(1), makeAlert(2)]);
    const messages: string[] = [];
    const opts = { log: (m: string) => messages.push(m) };
    await runNotifier(lake, config, { kind: 'available-now' }, opts);
    assert.equal(hook.requests.length, 2);
    const log = new DeliveryLog(lake);
    assert.equal((await log.all()).length, 2);
    // First batch: the retention ran (nothing old enough yet).
    assert.deepEqual(messages.filter((m) => m.startsWith('deliveries retention')).length, 1);

    // Eight days later: the next batch expires the first two deliveries, and keeps its own.
    const later = Date.now() + 8 * DAY;
    await commitAlerts(lake, [makeAlert(3)]);
    const notifier = new Notifier(lake, config, { ...opts, now: () => later });
    try {
      const counts = await notifier.processAlerts([makeAlert(3)]);
      assert.equal(counts.sent, 1);
      assert.deepEqual(
        (await log.all()).map((r) => r.alert_id),
        ['alert-00003'],
      );
      assert.equal(messages.filter((m) => m.startsWith('deliveries retention')).length, 2);
      // Same hour, another batch: no second retention.
      const ops = (await operations(lake)).length;
      await notifier.processAlerts([]);
      assert.equal((await operations(lake)).length, ops);
    } finally {
      await notifier.close();
    }
    assert.equal(hook.requests.length, 3);

    // 0 keeps everything.
    const keep = notifySchema.parse({ ...config, deliveries_retention: 0 });
    const forever = new Notifier(lake, keep, { now: () => later + 365 * DAY });
    await forever.processAlerts([]);
    await forever.close();
    assert.equal((await log.all()).length, 1);
    assert.throws(() => notifySchema.parse({ deliveries_retention: 'a month' }), /deliveries_retention/);
  } finally {
    await hook.close();
    await cleanup();
  }
});
