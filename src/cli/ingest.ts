import type { Command } from 'commander';

export function registerIngestCommand(_program: Command): void {
  // filled in by the module's owner
}
