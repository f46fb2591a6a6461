/**
 * A run's graph as the dashboard draws it: nodes by level (their longest path from a root), a level wider
 * than WIDEST_LEVEL shown as one group with its count by status (so that a 1,000-node fan stays readable),
 * laid out with dagre.
 */
import dagre from "@dagrejs/dagre";

const WIDEST_LEVEL = 12;
const NODE = { width: 150, height: 44 };

interface DrawnNode {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
  /** One node's name, or a group's `level N`. */
  label: string;
  /** The node's own names: one, or the group's. */
  members: string[];
}

interface Drawing {
  nodes: DrawnNode[];
  edges: { from: string; to: string; points: { x: number; y: number }[] }[];
  width: number;
  height: number;
}

/** Each node's level: 0 for a root, else one more than its deepest parent. */
function levelsOf(names: string[], edges: { source: string; target: string }[]): Map<string, number> {
  const parents = new Map(names.map((n) => [n, [] as string[]]));
  for (const e of edges) parents.get(e.target)?.push(e.source);
  const levels = new Map<string, number>();
  const level = (name: string, seen = new Set<string>()): number => {
    const known = levels.get(name);
    if (known !== undefined) return known;
    if (seen.has(name)) return 0;
    seen.add(name);
    const value = Math.max(-1, ...(parents.get(name) ?? []).map((p) => level(p, seen))) + 1;
    levels.set(name, value);
    return value;
  };
  for (const name of names) level(name);
  return levels;
}

/** The drawing of a graph: its wide levels collapsed, laid out top to bottom. */
export function draw(names: string[], edges: { source: string; target: string }[]): Drawing {
  const levels = levelsOf(names, edges);
  const byLevel = new Map<number, string[]>();
  for (const name of names)
    byLevel.set(levels.get(name) ?? 0, [...(byLevel.get(levels.get(name) ?? 0) ?? []), name]);
  const shownAs = new Map<string, string>();
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: "TB", nodesep: 24, ranksep: 48, marginx: 8, marginy: 8 });
  graph.setDefaultEdgeLabel(() => ({}));
  const members = new Map<string, string[]>();
  for (const [level, own] of byLevel) {
    if (own.length > WIDEST_LEVEL) {
      const id = `level ${level}`;
      members.set(id, own);
      for (const name of own) shownAs.set(name, id);
      graph.setNode(id, { ...NODE, width: NODE.width * 1.6, label: `${id}: ${own.length} nodes` });
    } else {
      for (const name of own) {
        members.set(name, [name]);
        shownAs.set(name, name);
        graph.setNode(name, { ...NODE, label: name });
      }
    }
  }
  for (const e of edges) {
    const [from, to] = [shownAs.get(e.source), shownAs.get(e.target)];
    if (from && to && from !== to && !graph.hasEdge(from, to)) graph.setEdge(from, to);
  }
  dagre.layout(graph);
  const { width = 0, height = 0 } = graph.graph();
  return {
    width,
    height,
    nodes: graph.nodes().map((id) => {
      const { x, y, width: w, height: h, label } = graph.node(id);
      return { id, x, y, width: w, height: h, label: label ?? id, members: members.get(id) ?? [id] };
    }),
    edges: graph.edges().map(({ v, w }) => ({ from: v, to: w, points: graph.edge(v, w).points })),
  };
}
