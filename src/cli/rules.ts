/** `talon rules test|list`: user rule files. */
import type { Command } from 'commander';
import { CliError, formatOption, out, printRows, withConfig } from './common.js';
import type { RuleTestResult } from '../detections/rules.js';

export function registerRulesCommand(program: Command): void {
  const rules = program.command('rules').description('user detection rules (rules/*.yaml)');
  withConfig(
    formatOption(
      rules
        .command('test')
        .description('validate rule files and run their inline tests')
        .argument('[files...]', 'rule files (default: every file in detect.rules_dir)'),
      ['text', 'json'],
    ),
    async ({ config, opts }, files: string[]) => {
      const { loadRuleFile, ruleFiles, runRuleTests } = await import('../detections/rules.js');
      const { Db } = await import('../sql/duckdb.js');
      const list = files && files.length ? files : await ruleFiles(config.detect.rules_dir);
      const db = await Db.open({ threads: 1 });
      const results: RuleTestResult[] = [];
      try {
        for (const f of list) {
          try {
            const rule = await loadRuleFile(f);
            const r = await runRuleTests(db, rule, f);
            if (r.length === 0)
              results.push({ file: f, rule: rule.id, test: '(no tests)', ok: true, alerts: 0 });
            results.push(...r);
          } catch (e) {
            results.push({
              file: f,
              rule: '?',
              test: '(load)',
              ok: false,
              alerts: 0,
              message: (e as Error).message,
            });
          }
        }
      } finally {
        db.close();
      }
      if (opts.format === 'json') out(JSON.stringify(results, null, 2) + '\n');
      else {
        for (const r of results) {
          out(`${r.ok ? 'ok  ' : 'FAIL'} ${r.rule} › ${r.test}${r.message ? ` — ${r.message}` : ''}\n`);
        }
        out(`${results.filter((r) => r.ok).length}/${results.length} passed\n`);
      }
      if (results.some((r) => !r.ok)) throw new CliError('rule tests failed');
    },
  );
  withConfig(
    formatOption(rules.command('list').description('list rule files'), ['table', 'json']),
    async ({ config, opts }) => {
      const { loadRuleFile, ruleFiles } = await import('../detections/rules.js');
      const rows = [];
      for (const f of await ruleFiles(config.detect.rules_dir)) {
        const r = await loadRuleFile(f);
        rows.push({
          id: r.id,
          severity: r.severity,
          enabled: r.enabled,
          sources: r.sources.join(','),
          file: f,
        });
      }
      printRows(opts.format, ['id', 'severity', 'enabled', 'sources', 'file'], rows);
    },
  );
}
