#!/usr/bin/env node
/**
 * `npm run bench -- <name> [flags]`: Talon's benchmarks. Each benchmark is a module exporting
 * `run(args)`; add one with a line in BENCHMARKS.
 */
export interface Benchmark {
  /** One line for `npm run bench` without a name. */
  description: string;
  run(args: string[]): Promise<void>;
}

const BENCHMARKS: Record<string, () => Promise<Benchmark>> = {
  lake: async () => (await import('./lake.js')).benchmark,
  detect: async () => (await import('./detect.js')).benchmark,
  ingest: async () => (await import('./ingest.js')).benchmark,
  notify: async () => (await import('./notify.js')).benchmark,
  intel: async () => (await import('./intel.js')).benchmark,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const load = name ? BENCHMARKS[name] : undefined;
  if (!load) {
    if (name && name !== '--help' && name !== '-h') process.stderr.write(`unknown benchmark: ${name}\n`);
    process.stderr.write('usage: npm run bench -- <name> [flags]   (flag --help for each)\n');
    for (const [n, l] of Object.entries(BENCHMARKS))
      process.stderr.write(`  ${n.padEnd(10)} ${(await l()).description}\n`);
    return name && name !== '--help' && name !== '-h' ? 2 : 0;
  }
  await (await load()).run(args);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
