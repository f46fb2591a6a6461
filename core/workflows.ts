/**
 * Workflows (Lattice's): a DAG of tasks. A workflow's definition is a record and one item per node and
 * per edge; each edit is one transaction on the definition's version, so two edits never race into a
 * cycle. A run snapshots the definition (core/workflow-runs.ts): editing never changes a run started.
 */
import { randomBytes } from "node:crypto";
import * as z from "zod";
import { actingTenant, canSee, type Principal, requireScope } from "./auth.ts";
import type { Deps } from "./deps.ts";
import { ConflictError, ERROR_CODES, NotFoundError, ValidationError } from "./errors.ts";
import { LIMITS, label } from "./fields.ts";
import { CommitConflict } from "./ports.ts";
import { submitTaskSchema } from "./requests.ts";

/** A node's name: what edges and `from` inputs call it by. */
export const nodeName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "must match [A-Za-z0-9][A-Za-z0-9_-]{0,63}");
const outputKey = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_./-]{0,127}$/, "must match [A-Za-z_][A-Za-z0-9_./-]{0,127}");

/** When an edge lets its target run: its source succeeded (the default), failed, or ended either way. */
export const EDGE_CONDITIONS = ["succeeded", "failed", "always"] as const;
export type EdgeCondition = (typeof EDGE_CONDITIONS)[number];

/** `{"from": "<node>.<key>"}`: the input is that node's output, and the edge from it is implied. */
const fromInput = z.strictObject({
  from: z
    .string()
    .max(200)
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.[A-Za-z_][A-Za-z0-9_./-]{0,127}$/,
      "must be <node>.<output key>",
    ),
});
const literalInput = z.union([z.string().max(LIMITS.promptBytes), z.number(), z.boolean(), z.null()]);
const inputsSchema = z
  .record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "must match [A-Za-z_][A-Za-z0-9_]{0,63}"),
    z.union([fromInput, literalInput]),
  )
  .refine((inputs) => Object.keys(inputs).length <= 50, "at most 50 inputs");

/** Fields of a submission that make no sense for a node, which runs once per run when its parents end. */
const NOT_FOR_NODES = [
  "scheduled_at",
  "schedule",
  "timezone",
  "interval",
  "valid_time_range",
  "end_time",
  "times",
  "overlap",
  "idempotency_key",
] as const;

/** A node's task: a submission body (inline or template, LLM or pod), as POST /v2/tasks takes it. */
const nodeTask = z.record(z.string(), z.unknown()).superRefine((task, ctx) => {
  for (const field of NOT_FOR_NODES) {
    if (task[field] !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [field],
        message: "a node runs once in each run, when its parents end",
      });
      return;
    }
  }
  const parsed = submitTaskSchema.safeParse(task);
  if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, code: "custom" });
});

export const workflowNodeBody = z.strictObject({
  name: nodeName,
  task: nodeTask,
  inputs: inputsSchema.default({}),
  /** The output keys it promises (documentation; `result`, output files and JSON keys are always kept). */
  outputs: z.array(outputKey).max(50).optional(),
});
export type WorkflowNodeBody = z.output<typeof workflowNodeBody>;

export const workflowEdgeBody = z.strictObject({
  source: nodeName,
  target: nodeName,
  on: z.enum(EDGE_CONDITIONS).default("succeeded"),
});
export type WorkflowEdgeBody = z.output<typeof workflowEdgeBody>;

/** The most nodes a workflow holds: a run writes one item per node. */
export const MAX_WORKFLOW_NODES = 5_000;

/** POST /v2/workflows: a name, and optionally the whole graph at once (as `workflows create -f` sends it). */
export const createWorkflowBody = z.strictObject({
  name: label(LIMITS.nameLength).optional(),
  tasks: z.array(workflowNodeBody).max(MAX_WORKFLOW_NODES).default([]),
  edges: z
    .array(workflowEdgeBody)
    .max(4 * MAX_WORKFLOW_NODES)
    .default([]),
});

export const edgeQuery = z.strictObject({ source: nodeName, target: nodeName });

export interface WorkflowDef {
  workflow_id: string;
  tenant: string;
  name?: string;
  /** Bumped by every edit (the edit's condition). */
  version: number;
  create_time: string;
  update_time: string;
}

export interface WorkflowNode {
  task_id: string;
  name: string;
  task: Record<string, unknown>;
  inputs: WorkflowNodeBody["inputs"];
  outputs?: string[];
}

export interface WorkflowEdge {
  source: string;
  target: string;
  on: EdgeCondition;
}

export interface WorkflowDefinition {
  def: WorkflowDef;
  nodes: WorkflowNode[];
  edges: WorkflowEdge[];
}

/** What an edit writes: nodes and edges to put, and to delete (by name, by pair). */
export interface WorkflowEdit {
  putNodes?: WorkflowNode[];
  putEdges?: WorkflowEdge[];
  deleteNodes?: string[];
  deleteEdges?: Pick<WorkflowEdge, "source" | "target">[];
}

const WORKFLOW_ID = /^wf_[0-9a-f]{16}$/;
const newWorkflowId = () => `wf_${randomBytes(8).toString("hex")}`;
const newTaskId = () => `wft_${randomBytes(8).toString("hex")}`;

export const workflowNotFound = (id: string) =>
  new NotFoundError(ERROR_CODES.workflowNotFound, `workflow ${id.slice(0, 64)} not found`);

/** The node an input comes from, if it comes from one. */
const sourceOf = (input: unknown) =>
  typeof input === "object" && input !== null && "from" in input
    ? String(input.from).split(".")[0]
    : undefined;

/** The edges a node's `from` inputs imply (on `succeeded`). */
const impliedEdges = (node: Pick<WorkflowNode, "name" | "inputs">): WorkflowEdge[] =>
  [
    ...new Set(
      Object.values(node.inputs)
        .map(sourceOf)
        .filter((s): s is string => s !== undefined),
    ),
  ].map((source) => ({ source, target: node.name, on: "succeeded" }));

/** Whether `to` is reachable from `from` along the edges. */
function reaches(edges: readonly WorkflowEdge[], from: string, to: string): boolean {
  const children = new Map<string, string[]>();
  for (const e of edges) children.set(e.source, [...(children.get(e.source) ?? []), e.target]);
  const seen = new Set<string>();
  const stack = [from];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    if (node === to) return true;
    if (seen.has(node)) continue;
    seen.add(node);
    stack.push(...(children.get(node) ?? []));
  }
  return false;
}

/**
 * The graph after adding nodes and edges: every edge's ends exist, no pair twice, no cycle. Problems are
 * 400s naming the field: `edge` for a cycle (as the contract has it), else where it came from.
 */
function checkedGraph(
  nodes: readonly WorkflowNode[],
  edges: readonly WorkflowEdge[],
  adding: WorkflowEdge[],
  where: string,
) {
  const names = new Set(nodes.map((n) => n.name));
  const all = [...edges];
  for (const edge of adding) {
    for (const end of [edge.source, edge.target] as const) {
      if (!names.has(end)) throw new ValidationError(where, `no node ${end} in this workflow`);
    }
    if (all.some((e) => e.source === edge.source && e.target === edge.target)) {
      throw new ConflictError(`edge: ${edge.source} → ${edge.target} already exists`);
    }
    if (edge.source === edge.target || reaches(all, edge.target, edge.source)) {
      throw new ValidationError("edge", `${edge.source} → ${edge.target} would close a cycle`);
    }
    all.push(edge);
  }
  return all;
}

const nodeOf = (body: WorkflowNodeBody): WorkflowNode => ({
  task_id: newTaskId(),
  name: body.name,
  task: body.task,
  inputs: body.inputs,
  outputs: body.outputs,
});

/** Creates a workflow (tasks:write), with its whole graph if given: all of it, or a 400 and nothing. */
export async function createWorkflow(
  deps: Pick<Deps, "workflows" | "clock">,
  principal: Principal,
  body: z.output<typeof createWorkflowBody>,
) {
  requireScope(principal, "tasks:write");
  const tenant = actingTenant(principal);
  const nodes: WorkflowNode[] = [];
  body.tasks.forEach((task, i) => {
    if (nodes.some((n) => n.name === task.name))
      throw new ConflictError(`tasks.${i}.name: ${task.name} is taken`);
    nodes.push(nodeOf(task));
  });
  let edges: WorkflowEdge[] = [];
  body.tasks.forEach((task, i) => {
    edges = checkedGraph(nodes, edges, impliedEdges(task), `tasks.${i}.inputs`);
  });
  body.edges.forEach((edge, i) => {
    edges = checkedGraph(nodes, edges, [edge], `edges.${i}`);
  });
  const iso = deps.clock.now().toISOString();
  const def: WorkflowDef = {
    workflow_id: newWorkflowId(),
    tenant,
    name: body.name,
    version: 1,
    create_time: iso,
    update_time: iso,
  };
  await deps.workflows.createWorkflow({ def, nodes, edges });
  return { workflow_id: def.workflow_id, tasks: nodes.map((n) => ({ name: n.name, task_id: n.task_id })) };
}

/** A workflow the caller may see, or a 404 (another tenant's ids do not leak). */
export async function visibleWorkflow(
  deps: Pick<Deps, "workflows">,
  principal: Principal,
  id: string,
): Promise<WorkflowDefinition> {
  requireScope(principal, "tasks:read");
  const found = WORKFLOW_ID.test(id) ? await deps.workflows.getWorkflow(id) : undefined;
  if (!found || !canSee(principal, found.def.tenant)) throw workflowNotFound(id);
  return found;
}

/** A workflow's record, read alone, if the caller may see it (tasks:read); else a 404. */
export async function visibleWorkflowDef(deps: Pick<Deps, "workflows">, principal: Principal, id: string) {
  requireScope(principal, "tasks:read");
  const def = WORKFLOW_ID.test(id) ? await deps.workflows.getWorkflowDef(id) : undefined;
  if (!def || !canSee(principal, def.tenant)) throw workflowNotFound(id);
  return def;
}

/**
 * Applies an edit to the definition as read, on its version: a concurrent edit makes it read and decide
 * again, so the checks (a cycle, a node in use) always see the graph it writes over.
 */
async function edit<T>(
  deps: Pick<Deps, "workflows" | "clock">,
  principal: Principal,
  id: string,
  decide: (definition: WorkflowDefinition) => { edit: WorkflowEdit; answer: T },
): Promise<T> {
  requireScope(principal, "tasks:write");
  for (let race = 0; ; race++) {
    const definition = await visibleWorkflow(deps, principal, id);
    const { edit: change, answer } = decide(definition);
    try {
      await deps.workflows.editWorkflow(definition.def, deps.clock.now().toISOString(), change);
      return answer;
    } catch (err) {
      if (!(err instanceof CommitConflict) || race >= 5) throw err;
    }
  }
}

/** Adds a node (tasks:write); its `from` inputs add the edges from their nodes. */
export function addWorkflowNode(
  deps: Pick<Deps, "workflows" | "clock">,
  principal: Principal,
  id: string,
  body: WorkflowNodeBody,
) {
  return edit(deps, principal, id, ({ nodes, edges }) => {
    if (nodes.some((n) => n.name === body.name)) throw new ConflictError(`name: ${body.name} is taken`);
    if (nodes.length >= MAX_WORKFLOW_NODES)
      throw new ConflictError(`a workflow holds at most ${MAX_WORKFLOW_NODES} nodes`);
    const node = nodeOf(body);
    const implied = impliedEdges(node);
    checkedGraph([...nodes, node], edges, implied, "inputs");
    return { edit: { putNodes: [node], putEdges: implied }, answer: { task_id: node.task_id } };
  });
}

/** Adds an edge (tasks:write): a 400 naming `edge` if it would close a cycle. */
export function addWorkflowEdge(
  deps: Pick<Deps, "workflows" | "clock">,
  principal: Principal,
  id: string,
  body: WorkflowEdgeBody,
) {
  return edit(deps, principal, id, ({ nodes, edges }) => {
    checkedGraph(nodes, edges, [body], "edge");
    return { edit: { putEdges: [body] }, answer: body };
  });
}

/** Deletes an edge (tasks:write), unless an input of its target comes from its source. */
export function deleteWorkflowEdge(
  deps: Pick<Deps, "workflows" | "clock">,
  principal: Principal,
  id: string,
  pair: z.output<typeof edgeQuery>,
) {
  return edit(deps, principal, id, ({ nodes, edges }) => {
    const edge = edges.find((e) => e.source === pair.source && e.target === pair.target);
    if (!edge)
      throw new NotFoundError(ERROR_CODES.workflowNotFound, `edge ${pair.source} → ${pair.target} not found`);
    const target = nodes.find((n) => n.name === pair.target);
    if (target && impliedEdges(target).some((e) => e.source === pair.source)) {
      throw new ConflictError(
        `edge: an input of ${pair.target} comes from ${pair.source}: remove the input first`,
      );
    }
    return { edit: { deleteEdges: [pair] }, answer: edge };
  });
}

/** Deletes a node and its edges (tasks:write), unless another node's inputs come from it. */
export function deleteWorkflowNode(
  deps: Pick<Deps, "workflows" | "clock">,
  principal: Principal,
  id: string,
  taskId: string,
) {
  return edit(deps, principal, id, ({ nodes, edges }) => {
    const node = nodes.find((n) => n.task_id === taskId);
    if (!node)
      throw new NotFoundError(
        ERROR_CODES.workflowNotFound,
        `task ${taskId.slice(0, 64)} not found in workflow ${id}`,
      );
    const users = nodes.filter((n) => impliedEdges(n).some((e) => e.source === node.name)).map((n) => n.name);
    if (users.length > 0)
      throw new ConflictError(`task: the inputs of ${users.join(", ")} come from ${node.name}`);
    const touching = edges.filter((e) => e.source === node.name || e.target === node.name);
    return {
      edit: { deleteNodes: [node.name], deleteEdges: touching },
      answer: { task_id: taskId, name: node.name },
    };
  });
}

/** A node as the API shows it. */
const nodeView = (node: WorkflowNode) => ({
  task_id: node.task_id,
  name: node.name,
  task: node.task,
  inputs: node.inputs,
  ...(node.outputs && { outputs: node.outputs }),
});

/** GET /v2/workflows/{id}/tasks: the nodes (by name) and edges. */
export async function getWorkflowTasks(deps: Pick<Deps, "workflows">, principal: Principal, id: string) {
  const { def, nodes, edges } = await visibleWorkflow(deps, principal, id);
  return {
    workflow_id: def.workflow_id,
    name: def.name,
    version: def.version,
    tasks: nodes.map(nodeView),
    edges,
  };
}

/** The caller's workflows, newest first. */
export async function listWorkflows(deps: Pick<Deps, "workflows">, principal: Principal) {
  requireScope(principal, "tasks:read");
  const defs = await deps.workflows.listWorkflows(actingTenant(principal));
  return defs.map(({ workflow_id, name, version, create_time, update_time }) => ({
    workflow_id,
    name,
    version,
    create_time,
    update_time,
  }));
}
