/**
 * `npm run bench -- notify [--alerts N] [--per-commit N]`: alerts committed to the alerts
 * table while `talon notify` runs continuously, delivered to a local webhook receiver.
 * Reports alerts/s (first commit → last delivery) and the p50/p99 from an alert's commit to
 * its arrival at the receiver. Grouping off.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Benchmark } from './main.js';
import { Lake } from '../lake/lake.js';
import { alertsSink } from '../alerts/alerts.js';
import { writeTable } from '../engine/batch.js';
import { HttpReceiver } from '../testing/http-receiver.js';
import { runNotifier } from '../notify/notifier.js';
import { notifySchema } from '../notify/settings.js';

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

function alertsSql(from: number, to: number): string {
  return `SELECT 'bench-' || i AS alert_id, 'bench_detection' AS detection, 'high' AS severity, 'Bench alert' AS title,
    'bench alert ' || i AS description, TIMESTAMP '2026-01-10 00:00:00' + to_seconds(i) AS event_time,
    now()::TIMESTAMP AS detected_at, 'aid' || (i % 500) AS aid, 'host-' || (i % 500) AS host, 'user' || (i % 50) AS "user",
    'k' || i AS dedup_key, 'NetworkListenIP4' AS evidence_table, CAST(1 AS BIGINT) AS evidence_version,
    '{"LocalPort":3389,"CommandLine":"svchost.exe -k netsvcs"}' AS evidence, ['T1133']::VARCHAR[] AS tags, 'open' AS status
    FROM range(${from}, ${to}) t(i)`;
}

export const benchmark: Benchmark = {
  description: '10,000 alerts → local webhook receiver: alerts/s and p99 commit→delivery',
  async run(args) {
    const total = flag(args, '--alerts', 10_000);
    const perCommit = flag(args, '--per-commit', 500);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-bench-notify-'));
    const rx = await HttpReceiver.start();
    const writer = await Lake.open(path.join(dir, 'lake'));
    const reader = await Lake.open(path.join(dir, 'lake'));
    const committedAt = new Map<number, number>();
    try {
      // Create the table before the notifier starts.
      await writeTable(
        writer,
        'alerts',
        alertsSql(0, 0) + ' LIMIT 0',
        { mode: 'append' },
        alertsSink.create ?? {},
        { appId: 'bench', version: 0 },
      );
      const config = notifySchema.parse({
        destinations: [{ name: 'hook', type: 'webhook', url: rx.url('/bench') }],
        record_every: 250,
        concurrency: 16,
        poll_ms: 20,
      });
      const ac = new AbortController();
      const notifier = runNotifier(reader, config, { kind: 'continuous', pollMs: 20 }, { signal: ac.signal });
      const t0 = Date.now();
      for (let from = 0, v = 1; from < total; from += perCommit, v++) {
        const to = Math.min(total, from + perCommit);
        await writeTable(
          writer,
          'alerts',
          alertsSql(from, to),
          { mode: 'merge', merge: alertsSink.merge! },
          alertsSink.create ?? {},
          {
            appId: 'bench',
            version: v,
          },
        );
        const at = Date.now();
        for (let i = from; i < to; i++) committedAt.set(i, at);
      }
      const tCommitted = Date.now();
      await rx.waitFor(total, 600_000);
      const tDone = Date.now();
      ac.abort();
      await notifier;
      const lat = rx.requests
        .map((r) => {
          const id = Number(/"alert_id":"bench-(\d+)"/.exec(r.text)![1]);
          return r.at - committedAt.get(id)!;
        })
        .sort((a, b) => a - b);
      const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
      const unique = new Set(rx.requests.map((r) => /"alert_id":"(bench-\d+)"/.exec(r.text)![1])).size;
      process.stdout.write(
        [
          `notify bench: ${total} alerts in commits of ${perCommit}, webhook on 127.0.0.1, grouping off`,
          `  committing: ${((tCommitted - t0) / 1000).toFixed(2)} s`,
          `  delivered:  ${rx.requests.length} requests, ${unique} distinct alerts`,
          `  throughput: ${Math.round(total / ((tDone - t0) / 1000))} alerts/s (first commit → last delivery)`,
          `  delivery only: ${Math.round(total / ((tDone - rx.requests[0].at) / 1000))} alerts/s (first → last delivery; the writer shares the CPU)`,
          `  commit→delivery: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${lat[lat.length - 1]} ms`,
        ].join('\n') + '\n',
      );
    } finally {
      writer.close();
      reader.close();
      await rx.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
