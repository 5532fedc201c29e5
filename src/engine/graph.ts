/**
 * The graph of queries — sources, operators, state and sink tables — as Delta Live Tables
 * draws its execution graph: as JSON, as plain text, or as a Mermaid flowchart.
 */
import type { QueryDefinition } from './query.js';

export interface GraphNode {
  id: string;
  kind: 'table' | 'query';
  label: string;
  detection?: string;
  operators?: string[];
}

export interface GraphEdge {
  from: string;
  to: string;
  /** stream (change feed), snapshot (read whole at a version), state (read+written), sink */
  kind: 'stream' | 'snapshot' | 'sink';
}

export interface PipelineGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export function pipelineGraph(defs: QueryDefinition[]): PipelineGraph {
  const nodes = new Map<string, GraphNode>();
  const edges: GraphEdge[] = [];
  const table = (name: string) => {
    const id = `table:${name.toLowerCase()}`;
    if (!nodes.has(id)) nodes.set(id, { id, kind: 'table', label: name });
    return id;
  };
  for (const d of defs) {
    const q = `query:${d.id}`;
    nodes.set(q, { id: q, kind: 'query', label: d.id, detection: d.detection, operators: d.operators ?? [] });
    for (const s of d.sources) edges.push({ from: table(s.table), to: q, kind: 'stream' });
    for (const s of d.snapshots ?? []) edges.push({ from: table(s), to: q, kind: 'snapshot' });
    for (const s of d.sinks) edges.push({ from: q, to: table(s.table), kind: 'sink' });
    for (const s of d.stateTables ?? []) {
      if (!d.sinks.some((k) => k.table.toLowerCase() === s.toLowerCase())) {
        edges.push({ from: q, to: table(s), kind: 'sink' });
      }
    }
  }
  return { nodes: [...nodes.values()], edges };
}

export function graphText(g: PipelineGraph): string {
  const lines: string[] = [];
  for (const n of g.nodes.filter((x) => x.kind === 'query')) {
    lines.push(`${n.label}${n.detection ? `  [detection ${n.detection}]` : ''}`);
    const ins = g.edges.filter((e) => e.to === n.id);
    const outs = g.edges.filter((e) => e.from === n.id);
    const name = (id: string) => g.nodes.find((x) => x.id === id)?.label ?? id;
    for (const e of ins.filter((e) => e.kind === 'stream')) lines.push(`  ← stream   ${name(e.from)}`);
    for (const e of ins.filter((e) => e.kind === 'snapshot')) lines.push(`  ← snapshot ${name(e.from)}`);
    for (const op of n.operators ?? []) lines.push(`  │ ${op}`);
    for (const e of outs) lines.push(`  → sink     ${name(e.to)}`);
    lines.push('');
  }
  return lines.join('\n');
}

export function graphMermaid(g: PipelineGraph): string {
  const safe = (id: string) => id.replace(/[^A-Za-z0-9_]/g, '_');
  // Mermaid labels are HTML: operator text such as `ioc <> ''` must not become markup.
  const esc = (s: string) =>
    s.replace(/&/g, '#amp;').replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
  const lines = ['flowchart LR'];
  for (const n of g.nodes) {
    if (n.kind === 'table') lines.push(`  ${safe(n.id)}[("${esc(n.label)}")]`);
    else {
      const ops = (n.operators ?? []).map((o) => esc(o)).join('<br/>');
      lines.push(`  ${safe(n.id)}["<b>${esc(n.label)}</b>${ops ? '<br/>' + ops : ''}"]`);
    }
  }
  for (const e of g.edges) {
    const arrow = e.kind === 'snapshot' ? '-.->' : '-->';
    const label = e.kind === 'stream' ? '|stream|' : e.kind === 'snapshot' ? '|snapshot|' : '';
    lines.push(`  ${safe(e.from)} ${arrow}${label} ${safe(e.to)}`);
  }
  return lines.join('\n') + '\n';
}
