#!/usr/bin/env node
/**
 * `talon` — a thin shell over the library: each command module parses its flags, loads the
 * config, and calls into sources/lake/engine. No logic that a test would want lives here.
 */
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { registerDataCommands } from './data.js';
import { registerIngestCommand } from './ingest.js';
import { registerGenerateCommand } from './generate.js';
import { registerDemoCommand } from './demo.js';

const require = createRequire(import.meta.url);
const pkg = require('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('talon')
    .description('Security lakehouse and streaming detection engine for CrowdStrike Falcon (FDR) data')
    .version(pkg.version, '-V, --version')
    .option('-c, --config <file>', 'config file (default: ./talon.yaml when present; env TALON_CONFIG)')
    .showHelpAfterError();
  registerDataCommands(program);
  registerIngestCommand(program);
  registerGenerateCommand(program);
  registerDemoCommand(program);
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`talon: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = process.exitCode || 1;
  });
