/** `talon demo`: generate → ingest → detect → alerts on the embedded default (see src/demo). */
import type { Command } from 'commander';
import { Option } from 'commander';
import path from 'node:path';
import { numberOption, out, withLake } from './common.js';
import { log } from '../log.js';

export function registerDemoCommand(program: Command): void {
  withLake(
    program
      .command('demo')
      .description(
        'run the whole pipeline on generated FDR data with planted attacks: generate → ingest → detect → alerts',
      )
      .option('--data <dir>', 'folder for the generated FDR data (replaced)', './talon-demo-data')
      .option('--events <n>', 'events to generate', '20000')
      .option('--hosts <n>', 'hosts (sensors)', '25')
      .option('--days <n>', 'days of activity', '4')
      .option('--seed <seed>', 'generator seed (same seed, same data)', 'talon')
      .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text')),
    async ({ lake, config, opts }) => {
      const { runDemo } = await import('../demo/demo.js');
      const { formatAlertsText } = await import('../alerts/alerts.js');
      const res = await runDemo(lake, {
        dataDir: path.resolve(String(opts.data)),
        events: numberOption('--events', opts.events) ?? 20000,
        hosts: numberOption('--hosts', opts.hosts) ?? 25,
        days: numberOption('--days', opts.days) ?? 4,
        seed: String(opts.seed),
        detect: config.detect,
        notify: config.notify,
        // NDJSON alerts on stdout would break --format json's single object: use a file then.
        notifyStdout: opts.format !== 'json',
        logger: log,
      });
      if (opts.format === 'json') {
        out(JSON.stringify(res) + '\n');
        return;
      }
      const t = res.ingested;
      out(
        `Generated ${res.generated.events} FDR events in ${res.generated.batches} batch(es) → ${res.dataDir}\n`,
      );
      out(
        `Ingested ${t.files} file(s): ${t.events} rows into ${Object.keys(t.tables).length} table(s), ` +
          `${t.quarantined} quarantined, ${t.seconds.toFixed(1)} s → ${lake.location}\n`,
      );
      out(`Loaded ${res.iocs} IoC(s) into iocs\n\nAlerts:\n`);
      out(formatAlertsText(res.alerts));
      out(`\nNotifier: ${res.notified.sent} message(s) sent to ${res.notified.destinations.join(', ')}\n`);
      out('\nCheck against the generator ground truth:\n');
      let ok = true;
      // The ground truth covers the seed's three detections; alerts of user rule files (e.g. the
      // example in ./rules) are shown but are not part of the check.
      const checked = new Set(['vulnerable_services', 'new_logon_location', 'ioc_match']);
      for (const [detection, c] of Object.entries(res.check)) {
        if (!checked.has(detection) && c.expected === 0) {
          out(
            `  ${detection.padEnd(22)} raised ${String(c.raised).padStart(3)}  (rule file, not in the ground truth)\n`,
          );
          continue;
        }
        const mark = c.expected === c.raised ? 'ok' : 'MISMATCH';
        if (c.expected !== c.raised) ok = false;
        out(
          `  ${detection.padEnd(22)} expected ${String(c.expected).padStart(3)}  raised ${String(c.raised).padStart(3)}  ${mark}\n`,
        );
      }
      out(
        `\nExplore: talon tables --lake ${lake.location} | talon query "SELECT * FROM alerts" | talon alerts list\n`,
      );
      if (!ok) process.exitCode = 1;
    },
  );
}
