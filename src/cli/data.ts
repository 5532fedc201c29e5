import type { Command } from 'commander';

export function registerDataCommands(_program: Command): void {
  // filled in by the module's owner
}
