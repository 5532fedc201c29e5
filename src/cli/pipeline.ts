/** `talon pipeline show`: the graph of detection queries. */
import type { Command } from 'commander';
import { UsageError, out, formatOption, withConfig } from './common.js';

export function registerPipelineCommand(program: Command): void {
  const pipeline = program.command('pipeline').description('the streaming pipeline');
  withConfig(
    formatOption(
      pipeline
        .command('show')
        .description('draw the queries: sources, operators, state and sink tables')
        .option('--detection <id...>', 'only these detections')
        .option('--rules <dir>', 'folder of rule files'),
      ['text', 'mermaid', 'json'],
    ),
    async ({ config, opts }) => {
      const { loadDetections, detectionQueries } = await import('../detections/registry.js');
      const { graphMermaid, graphText, pipelineGraph } = await import('../engine/graph.js');
      const set = await loadDetections(config.detect, {
        only: opts.detection as string[] | undefined,
        rulesDir: opts.rules as string | undefined,
      }).catch((e: Error) => {
        throw /unknown detection/.test(e.message) ? new UsageError(e.message) : e;
      });
      const g = pipelineGraph(detectionQueries(set));
      if (opts.format === 'json') out(JSON.stringify(g, null, 2) + '\n');
      else if (opts.format === 'mermaid') out(graphMermaid(g));
      else out(graphText(g));
    },
  );
}
