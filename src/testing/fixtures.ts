/**
 * Where the public sample data lives for `npm run test:fixtures`: `$TALON_FIXTURES`, else
 * `../shared/fixtures` beside the repository (as laid out in this project's CI). The data is
 * third-party and never copied into the repository.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function fixturesRoot(): string {
  if (process.env.TALON_FIXTURES) return process.env.TALON_FIXTURES;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('repository root (package.json) not found');
    dir = up;
  }
  return path.resolve(dir, '../shared/fixtures');
}
