#!/usr/bin/env node
/**
 * `talon` — a thin shell over the library: each command module parses its flags, loads the
 * config, and calls into sources/lake/engine. No logic that a test would want lives here.
 * Shared plumbing (config, --lake, --format, exit codes) is in ./common.ts.
 *
 * Every command is registered up front (help lists them all with their options), but each
 * action imports its implementation when it runs: `talon --help` or `talon --version` then
 * cost commander alone, not DuckDB, the AWS SDK, kafkajs, nodemailer and zod.
 */
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { registerDataCommands } from './data.js';
import { registerIngestCommand } from './ingest.js';
import { registerGenerateCommand } from './generate.js';
import { registerDemoCommand } from './demo.js';
import { registerDetectCommand } from './detect.js';
import { registerAlertsCommand } from './alerts.js';
import { registerIntelCommand } from './intel.js';
import { registerRulesCommand } from './rules.js';
import { registerPipelineCommand } from './pipeline.js';
import { registerNotifyCommand } from './notify.js';
import { registerRunCommand } from './run.js';
import { exitCodeOf, isConfigError } from './common.js';

const require = createRequire(import.meta.url);
const pkg = require('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('talon')
    .description('Security lakehouse and streaming detection engine for CrowdStrike Falcon (FDR) data')
    .version(pkg.version, '-V, --version')
    .option('-c, --config <file>', 'config file (default: ./talon.yaml when present; env TALON_CONFIG)')
    .showHelpAfterError()
    // Subcommands inherit this: commander throws instead of exiting, so main() picks the code.
    .exitOverride();
  registerDataCommands(program);
  registerIngestCommand(program);
  registerGenerateCommand(program);
  registerDemoCommand(program);
  registerDetectCommand(program);
  registerAlertsCommand(program);
  registerIntelCommand(program);
  registerRulesCommand(program);
  registerPipelineCommand(program);
  registerNotifyCommand(program);
  registerRunCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the message (or the help / version) already.
      return err.exitCode === 0 ? 0 : 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    // Config errors list one key per line, each its own `talon: config: …` line.
    const lines = message
      .split('\n')
      .map((l, i) => (i === 0 || isConfigError(err) ? `talon: ${l}` : `  ${l}`));
    process.stderr.write(lines.join('\n') + '\n');
    if (process.env.TALON_LOG === 'debug' && err instanceof Error && err.stack) {
      process.stderr.write(err.stack + '\n');
    }
    return exitCodeOf(err);
  }
}

function isEntryPoint(): boolean {
  if (!process.argv[1]) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // `talon query … | head` closes stdout early; that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
