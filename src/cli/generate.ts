import type { Command } from 'commander';
import type { GenerateSummary } from '../generate/index.js';

function intArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`${name}: expected an integer, got "${v}"`);
    return n;
  };
}

function numArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`${name}: expected a number, got "${v}"`);
    return n;
  };
}

function printText(s: GenerateSummary): void {
  const lines = [
    `generated ${s.events.toLocaleString('en-US')} events in ${s.batches} batches (${s.dataFiles} parts, ${(s.bytes / 1048576).toFixed(1)} MiB gz) into ${s.out}`,
    `window   ${s.start} .. ${s.end}, ${s.hosts} hosts, ${s.users} users, seed ${JSON.stringify(s.seed)}`,
    `types    ${Object.entries(s.eventsByType)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    `iocs     ${s.iocs} in ${s.paths.iocs}`,
    `expected alerts: vulnerable_services=${s.alerts.vulnerable_services} new_logon_location=${s.alerts.new_logon_location} ioc_match=${s.alerts.ioc_match} (decoys: ${s.decoys}) — see ${s.paths.groundTruth}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('Write realistic FDR batches with planted attack scenarios, iocs.csv and ground-truth.json')
    .requiredOption('-o, --out <dir>', 'output folder')
    .requiredOption('-n, --events <n>', 'number of events', intArg('--events'))
    .option('--hosts <n>', 'number of hosts (at least 8)', intArg('--hosts'), 25)
    .option('--days <d>', 'length of the time window in days (at least 1)', numArg('--days'), 7)
    .option('--seed <s>', 'PRNG seed: same seed and options, same bytes', 'talon')
    .option('--start <iso>', 'start of the time window (ISO-8601)', '2026-03-02T00:00:00.000Z')
    .option('--batches <n>', 'number of FDR batches (default: from events and days)', intArg('--batches'))
    .option('--learning-days <d>', 'new_logon_location learning period in days', numArg('--learning-days'), 1)
    .option('--part-events <n>', 'most events per part file', intArg('--part-events'), 10000)
    .option('--bucket <name>', 'bucket name written into the manifests')
    .option('--force', 'replace earlier generator output in the folder')
    .option('--format <f>', 'summary format: text | json', 'text')
    .action(async (opts: Record<string, unknown>) => {
      const format = String(opts.format);
      if (format !== 'text' && format !== 'json')
        throw new Error(`--format: expected text or json, got "${format}"`);
      const { generateFdr } = await import('../generate/index.js');
      const summary = await generateFdr({
        out: String(opts.out),
        events: opts.events as number,
        hosts: opts.hosts as number,
        days: opts.days as number,
        seed: String(opts.seed),
        start: String(opts.start),
        batches: opts.batches as number | undefined,
        learningDays: opts.learningDays as number,
        partEvents: opts.partEvents as number,
        bucket: opts.bucket as string | undefined,
        force: opts.force === true,
      });
      if (format === 'json') process.stdout.write(JSON.stringify(summary) + '\n');
      else printText(summary);
    });
}
