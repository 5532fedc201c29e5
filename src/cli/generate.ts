import type { Command } from 'commander';

export function registerGenerateCommand(_program: Command): void {
  // filled in by the module's owner
}
