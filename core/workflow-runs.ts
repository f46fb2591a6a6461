/**
 * Workflow runs. A run snapshots its workflow: one item per node (its task, inputs and how many parents
 * it has) and one per edge, so that editing the workflow never changes a run started, and a node's
 * completion touches only that node, its out-edges, its children's counts and the run's counters, never
 * the whole graph: a node's items stay small however wide its fan-in or fan-out.
 *
 * The run moves on from the events stream (functions/workflows.ts): a node's task starting marks it
 * running; its task ending records its outputs, counts it done on the run, and tells each child. A child
 * all of whose parents have ended is submitted as a normal task (under the run's tenant, admitted and
 * limited like any other), or skipped when its conditions cannot hold. Every step is a conditional write
 * or is idempotent, so an event delivered twice, or a process that dies between two steps and is
 * delivered the event again, changes nothing twice.
 */
import { randomBytes } from "node:crypto";
import { canSee, DEFAULT_TENANT, limitsOf, type Principal, requireScope } from "./auth.ts";
import type { Deps } from "./deps.ts";
import { DomainError, ERROR_CODES, NotFoundError, QueuedQuotaError, ValidationError } from "./errors.ts";
import { changeIdFor, type DomainEvent, eventId } from "./events.ts";
import { ADMIN_SCOPES, TENANT_SCOPES } from "./fields.ts";
import { blobKeys } from "./identifiers.ts";
import type { Task } from "./records.ts";
import { submitTaskSchema } from "./requests.ts";
import { pushRunStream, watchRunStream } from "./run-stream.ts";
import { cancelTask, submitTask } from "./tasks.ts";
import { renderPrompt } from "./templates.ts";
import { type EdgeCondition, visibleWorkflow, visibleWorkflowDef } from "./workflows.ts";

export const NODE_STATUSES = [
  "pending",
  "queued",
  "running",
  "succeeded",
  "failed",
  "canceled",
  "skipped",
] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];
/** A node in one of these has ended: it counts done on its run. */
const NODE_ENDED: readonly NodeStatus[] = ["succeeded", "failed", "canceled", "skipped"];
const NODE_OPEN: readonly NodeStatus[] = ["pending", "queued", "running"];

export type WorkflowRunStatus = "running" | "succeeded" | "failed" | "canceled";

/** An edge of a run (its workflow's, snapshotted), and how its parent ended once it has. */
export interface RunEdge {
  source: string;
  target: string;
  on: EdgeCondition;
  arrived?: NodeStatus;
}

/** An output: inline text, or a reference to an S3 object holding it (a file, or a long value). */
export type OutputValue = string | { ref: string; bytes?: number };

export interface WorkflowRun {
  run_id: string;
  workflow_id: string;
  tenant: string;
  status: WorkflowRunStatus;
  nodes_total: number;
  /** Nodes ended (succeeded, failed, canceled or skipped), and those of them that failed or were canceled. */
  nodes_done: number;
  nodes_failed: number;
  create_time: string;
  end_time?: string;
}

/**
 * A message of a run's live results stream (Lattice's): a node's task started, a node ended (with its
 * outputs), the run ended. `seq` counts from 1 in the run.
 */
export interface RunMessage {
  type: "start_task" | "finish_task" | "finish_workflow";
  seq: number;
  time: string;
  data: Record<string, unknown>;
}

/** A run's own event: stored with it, published by the relay, it starts the run's first nodes. */
export type WorkflowStarted = DomainEvent & {
  type: "workflow.started";
  workflow: { run_id: string; node: string };
};

export interface NodeRun {
  run_id: string;
  name: string;
  status: NodeStatus;
  /** How many edges come into it, and how many of their parents have ended (their edges say how). */
  parents_total: number;
  arrived_count?: number;
  /** Why it cannot run: the first parent whose ending its edge's condition does not hold for. */
  blocked?: string;
  task: Record<string, unknown>;
  inputs: Record<string, unknown>;
  task_uuid?: string;
  outputs?: Record<string, OutputValue>;
  error?: string;
  /** Why a pending node whose parents have ended is not submitted yet: its tenant's queued-task quota. */
  waiting?: string;
  start_time?: string;
  end_time?: string;
}

/** A node refused by its tenant's queued-task quota is looked at again after 5 s, doubling up to a minute. */
const QUOTA_RETRY_SECONDS = 5;
const QUOTA_RETRY_MAX_SECONDS = 60;

/** A node's children are told it ended, and submitted, this many at once. */
const FAN_OUT_LANES = 16;

/** An output longer than this is stored in S3, and the node keeps its reference. */
const INLINE_OUTPUT_BYTES = 8 * 1024;
/** A node keeps at most this much of its outputs inline; the rest go to S3 whatever their size. */
const INLINE_OUTPUTS_BYTES = 64 * 1024;

const WORKFLOW_RUN_ID = /^wfr_[0-9a-f]{16}$/;
const runNotFound = (id: string) =>
  new NotFoundError(ERROR_CODES.workflowNotFound, `workflow run ${id.slice(0, 64)} not found`);

/** Whether a parent's ending lets its child run, by the edge's condition. */
const holds = (on: EdgeCondition, parent: NodeStatus | undefined) =>
  on === "always" ? parent !== undefined : on === "succeeded" ? parent === "succeeded" : parent === "failed";

/** The principal a run's nodes are submitted as: the run's tenant, limited as its keys are. */
async function tenantOf(deps: Pick<Deps, "tenants">, tenant: string): Promise<Principal> {
  if (tenant === DEFAULT_TENANT) return { kind: "admin", scopes: ADMIN_SCOPES };
  const record = await deps.tenants.getTenant(tenant);
  return {
    kind: "tenant",
    tenantId: tenant,
    keyId: "workflow",
    scopes: TENANT_SCOPES,
    limits: limitsOf(record),
  };
}

/**
 * Starts a run of a workflow (tasks:write): snapshots every node, then submits the nodes without parents.
 * Answers its id.
 */
export async function startWorkflowRun(deps: Deps, principal: Principal, workflowId: string) {
  requireScope(principal, "tasks:write");
  const { def, nodes, edges } = await visibleWorkflow(deps, principal, workflowId);
  const iso = deps.clock.now().toISOString();
  const run: WorkflowRun = {
    run_id: `wfr_${randomBytes(8).toString("hex")}`,
    workflow_id: def.workflow_id,
    tenant: def.tenant,
    status: "running",
    nodes_total: nodes.length,
    nodes_done: 0,
    nodes_failed: 0,
    create_time: iso,
    ...(nodes.length === 0 && { status: "succeeded", end_time: iso }),
  };
  const parents = new Map<string, number>();
  for (const e of edges) parents.set(e.target, (parents.get(e.target) ?? 0) + 1);
  const nodeRuns: NodeRun[] = nodes.map((node) => ({
    run_id: run.run_id,
    name: node.name,
    status: "pending",
    parents_total: parents.get(node.name) ?? 0,
    task: node.task,
    inputs: node.inputs,
  }));
  const runEdges = edges.map(({ source, target, on }) => ({ source, target, on }));
  const started: WorkflowStarted = {
    id: eventId(changeIdFor(iso, 0), 0),
    type: "workflow.started",
    time: iso,
    tenant: run.tenant,
    pool: "",
    status: run.status,
    task_uuid: "",
    workflow: { run_id: run.run_id, node: "" },
  };
  await deps.workflowRuns.createWorkflowRun(run, nodeRuns, runEdges, started);
  // Now, so that the first nodes do not wait for the event; the event does it again if this is cut short.
  await startRoots(deps, run.run_id, nodeRuns).catch((err: unknown) =>
    deps.log.warn("a workflow run's first nodes wait for its started event", {
      run_id: run.run_id,
      error: String(err),
    }),
  );
  return {
    run_id: run.run_id,
    status: run.status,
    stream_url: streamUrlOf(deps, def.workflow_id, run.run_id),
  };
}

/** Where a client opens a run's live results stream (the API Gateway WebSocket API, or the local server). */
const streamUrlOf = (deps: Deps, workflowId: string, runId: string) =>
  deps.streamUrl
    .replace("{id}", encodeURIComponent(workflowId))
    .replace("{run_id}", encodeURIComponent(runId));

/** Submits (or skips) the nodes of a run that have no parents. */
const startRoots = (deps: Deps, runId: string, nodes: NodeRun[]) =>
  advance(
    deps,
    runId,
    nodes.filter((n) => n.parents_total === 0).map((n) => ({ consider: n })),
  );

/** A run the caller may see, with its nodes; another tenant's is a 404. */
async function visibleRun(deps: Deps, principal: Principal, workflowId: string, runId: string) {
  const found = WORKFLOW_RUN_ID.test(runId) ? await deps.workflowRuns.getWorkflowRun(runId) : undefined;
  const run = seen(principal, workflowId, runId, found?.run);
  return { run, nodes: found?.nodes ?? [], edges: found?.edges ?? [] };
}

/** The run, if it is of that workflow and the caller may see it (its record holds the tenant); else a 404. */
function seen(principal: Principal, workflowId: string, runId: string, run: WorkflowRun | undefined) {
  requireScope(principal, "tasks:read");
  if (!run || run.workflow_id !== workflowId || !canSee(principal, run.tenant)) throw runNotFound(runId);
  return run;
}

const runView = (run: WorkflowRun) => ({
  run_id: run.run_id,
  workflow_id: run.workflow_id,
  status: run.status,
  nodes_total: run.nodes_total,
  nodes_done: run.nodes_done,
  nodes_failed: run.nodes_failed,
  create_time: run.create_time,
  end_time: run.end_time,
});

/** GET …/runs/{run_id}: the run, each node's status, task and outputs, and its edges (as it was started). */
export async function getWorkflowRun(deps: Deps, principal: Principal, workflowId: string, runId: string) {
  const { run, nodes, edges } = await visibleRun(deps, principal, workflowId, runId);
  return {
    ...runView(run),
    stream_url: streamUrlOf(deps, workflowId, runId),
    edges: edges.map(({ source, target, on }) => ({ source, target, on })),
    nodes: nodes.map((n) => ({
      name: n.name,
      status: n.status,
      task_uuid: n.task_uuid,
      outputs: n.outputs ?? {},
      error: n.error,
      waiting: n.status === "pending" ? n.waiting : undefined,
      start_time: n.start_time,
      end_time: n.end_time,
    })),
  };
}

/** A workflow's runs, newest first. */
export async function listWorkflowRuns(deps: Deps, principal: Principal, workflowId: string) {
  const def = await visibleWorkflowDef(deps, principal, workflowId);
  return (await deps.workflowRuns.listWorkflowRuns(def.workflow_id)).map(runView);
}

/**
 * Cancels a run (tasks:write): it is `canceled` at once; its pending nodes are canceled, its queued and
 * running nodes' tasks are canceled (their events end the nodes), and no node is submitted after.
 */
export async function cancelWorkflowRun(deps: Deps, principal: Principal, workflowId: string, runId: string) {
  requireScope(principal, "tasks:write");
  const { run, nodes } = await visibleRun(deps, principal, workflowId, runId);
  if (run.status === "running")
    await deps.workflowRuns.endWorkflowRun(runId, "canceled", deps.clock.now().toISOString());
  for (const node of nodes) {
    if (node.status === "pending") {
      await advance(deps, runId, [
        { end: node.name, from: ["pending"], status: "canceled", error: "the run was canceled" },
      ]);
    } else if (node.task_uuid && (node.status === "queued" || node.status === "running")) {
      await cancelQuietly(deps, run.tenant, node.task_uuid);
    }
  }
  return { run_id: runId, status: "canceled" as const };
}

/** Cancels a node's task; one that ended meanwhile (its own event ends the node) needs nothing. */
async function cancelQuietly(deps: Deps, tenant: string, uuid: string): Promise<void> {
  await cancelTask(deps, await tenantOf(deps, tenant), uuid).catch((err: unknown) => {
    if (!(err instanceof DomainError)) throw err;
  });
}

/**
 * A workflow's event: `workflow.started` submits the run's first nodes (again, if its start already did);
 * a node task's `task.running` marks the node running; its ending records its outputs and moves the run
 * on. Safe to receive twice, and in any order with the node's own submission.
 */
export async function onWorkflowEvent(deps: Deps, event: DomainEvent): Promise<void> {
  const link = event.workflow;
  if (!link) return;
  const iso = event.time;
  if (event.type === "workflow.started") {
    // The run's whole graph, read once: the nodes without parents.
    const found = await deps.workflowRuns.getWorkflowRun(link.run_id);
    if (found?.run.status === "running") await startRoots(deps, link.run_id, found.nodes);
    else await finishIfDone(deps, link.run_id);
    return;
  }
  if (event.type === "task.running") {
    await deps.workflowRuns.moveNodeRun(link.run_id, link.node, ["pending", "queued"], {
      status: "running",
      task_uuid: event.task_uuid,
      start_time: iso,
    });
    await say(deps, link.run_id, "start_task", link.node, { name: link.node, task_uuid: event.task_uuid });
    return;
  }
  const status = event.type.slice("task.".length) as NodeStatus;
  if (!NODE_ENDED.includes(status)) return;
  const task = await deps.tasks.getTask(event.task_uuid);
  const outputs = task ? await outputsOf(deps, link, task) : {};
  await advance(deps, link.run_id, [
    {
      end: link.node,
      from: NODE_OPEN,
      status,
      task_uuid: event.task_uuid,
      outputs,
      error: status === "succeeded" ? undefined : (task?.error_message ?? event.message),
      at: iso,
    },
  ]);
}

/** A step of a run: end a node (and tell its children), or look at a node whose parents may all have ended. */
type Step =
  | {
      end: string;
      from: readonly NodeStatus[];
      status: NodeStatus;
      task_uuid?: string;
      outputs?: Record<string, OutputValue>;
      error?: string;
      at?: string;
    }
  | { consider: NodeRun; attempt?: number };

/**
 * Moves a run on from `steps`, until nothing follows: each ended node tells its children, each child
 * whose parents have all ended is submitted or skipped, and the run ends with its last node. A step
 * that finds its node already moved (a second delivery) still does what follows it, which is idempotent.
 */
async function advance(deps: Deps, runId: string, steps: Step[]): Promise<void> {
  const runs = deps.workflowRuns;
  for (let step = steps.shift(); step; step = steps.shift()) {
    if ("consider" in step) {
      steps.push(...(await consider(deps, runId, step.consider, step.attempt)));
      continue;
    }
    const { end, from, at, ...set } = step;
    const ended = NODE_ENDED.includes(set.status)
      ? { failed: set.status === "failed" || set.status === "canceled" }
      : undefined;
    await runs.moveNodeRun(
      runId,
      end,
      from,
      { ...set, end_time: at ?? deps.clock.now().toISOString() },
      ended,
    );
    const node = await runs.getNodeRun(runId, end);
    if (!node || !NODE_ENDED.includes(node.status)) continue;
    await announceEnded(deps, node);
    // A wide fan-out tells its children a few at a time, each submitted as its parents allow.
    const out = await runs.listRunEdges(runId, node.name);
    const lane = async () => {
      for (let edge = out.shift(); edge !== undefined; edge = out.shift()) {
        const blocked = holds(edge.on, node.status)
          ? undefined
          : `${node.name} ${node.status}, and its edge runs this on ${edge.on}`;
        const child = await runs.arriveAtNodeRun(runId, edge, node.status, blocked);
        steps.push(...(await consider(deps, runId, child)));
      }
    };
    await Promise.all(Array.from({ length: Math.min(FAN_OUT_LANES, out.length) }, lane));
    await finishIfDone(deps, runId);
  }
}

/**
 * What a pending node whose parents have all ended does: run, be skipped, be canceled with its run, or
 * wait for its tenant's queued-task quota (`attempt`: how often it was refused so far).
 */
async function consider(deps: Deps, runId: string, node: NodeRun, attempt = 0): Promise<Step[]> {
  if (node.status !== "pending") return [];
  if ((node.arrived_count ?? 0) < node.parents_total) return [];
  const run = await deps.workflowRuns.getWorkflowRunRecord(runId);
  if (!run || run.status === "canceled") {
    return [{ end: node.name, from: ["pending"], status: "canceled", error: "the run was canceled" }];
  }
  if (node.blocked) return [{ end: node.name, from: ["pending"], status: "skipped", error: node.blocked }];
  try {
    const task = await submitNode(deps, run, node);
    const queued = { status: "queued" as const, task_uuid: task.uuid };
    if (!(await deps.workflowRuns.moveNodeRun(runId, node.name, ["pending"], queued))) {
      // Canceled with its run while it was being submitted: its task must not run on.
      const now = await deps.workflowRuns.getNodeRun(runId, node.name);
      if (now?.status === "canceled") await cancelQuietly(deps, run.tenant, task.uuid);
    }
    return [];
  } catch (err) {
    if (err instanceof QueuedQuotaError) {
      await waitForQuota(deps, runId, node.name, err.message, attempt);
      return [];
    }
    // The node's own problem (an input its parent did not give, a task the API refuses): it fails.
    if (!(err instanceof DomainError)) throw err;
    return [{ end: node.name, from: ["pending"], status: "failed", error: err.message }];
  }
}

/**
 * A node its tenant's queued-task quota refused stays pending, saying why, and is looked at again later
 * (a delayed message to the workflows function), as queued work starts and frees the quota.
 */
async function waitForQuota(deps: Deps, runId: string, name: string, reason: string, attempt: number) {
  await deps.workflowRuns.moveNodeRun(runId, name, ["pending"], { status: "pending", waiting: reason });
  const delaySeconds = Math.min(QUOTA_RETRY_MAX_SECONDS, QUOTA_RETRY_SECONDS * 2 ** attempt);
  await deps.workflowQueue.send(
    { node_retry: { run_id: runId, node: name, attempt: attempt + 1 } },
    delaySeconds,
  );
}

/** A node that waits for its tenant's quota, looked at again (core/workflow-queue.ts). */
export async function retryNode(deps: Deps, retry: { run_id: string; node: string; attempt: number }) {
  const node = await deps.workflowRuns.getNodeRun(retry.run_id, retry.node);
  if (node?.status === "pending")
    await advance(deps, retry.run_id, [{ consider: node, attempt: retry.attempt }]);
}

/** Submits a node's task with its inputs filled in, once however often it is asked (its idempotency key). */
async function submitNode(deps: Deps, run: WorkflowRun, node: NodeRun): Promise<Task> {
  const inputs = await inputsOf(deps, run.run_id, node);
  const body: Record<string, unknown> = { ...node.task, idempotency_key: `wf-${run.run_id}-${node.name}` };
  if (typeof body.prompt === "string") body.prompt = await renderPrompt(body.prompt, inputs);
  const parsed = submitTaskSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ValidationError(`task.${issue?.path.join(".")}`, issue?.message ?? "invalid");
  }
  const workflow = { run_id: run.run_id, node: node.name };
  const outcome = await submitTask(deps, await tenantOf(deps, run.tenant), parsed.data, undefined, {
    workflow,
    inputs,
  });
  return outcome.task;
}

/** A node's inputs: literals as they are, `from` inputs read from their node's outputs (and S3). */
async function inputsOf(deps: Deps, runId: string, node: NodeRun): Promise<Record<string, unknown>> {
  const entries = await Promise.all(
    Object.entries(node.inputs).map(async ([key, input]) => {
      if (typeof input !== "object" || input === null || !("from" in input)) return [key, input] as const;
      const from = String(input.from);
      const dot = from.indexOf(".");
      const [source, output] = [from.slice(0, dot), from.slice(dot + 1)];
      const value = (await deps.workflowRuns.getNodeRun(runId, source))?.outputs?.[output];
      if (value === undefined) {
        throw new ValidationError(`inputs.${key}`, `${source} has no output ${output}`);
      }
      if (typeof value === "string") return [key, value] as const;
      const bytes = await deps.blobs.get(value.ref);
      return [key, bytes === undefined ? "" : Buffer.from(bytes).toString("utf8")] as const;
    }),
  );
  return Object.fromEntries(entries);
}

/**
 * A node's outputs from its task: `result` (the final answer), the keys of a final JSON object answer,
 * and each output file (by reference). Long values go to S3 under the run, and the node keeps their
 * references.
 */
async function outputsOf(deps: Deps, link: NonNullable<Task["workflow"]>, task: Task) {
  const outputs: Record<string, OutputValue> = {};
  let inline = 0;
  const keep = async (key: string, text: string) => {
    const bytes = Buffer.byteLength(text);
    if (bytes <= INLINE_OUTPUT_BYTES && inline + bytes <= INLINE_OUTPUTS_BYTES) {
      inline += bytes;
      outputs[key] = text;
      return;
    }
    const ref = `workflows/${link.run_id}/${link.node}/${encodeURIComponent(key)}`;
    await deps.blobs.put(ref, text, "text/plain; charset=utf-8");
    outputs[key] = { ref, bytes };
  };
  const answer = task.result?.output;
  if (answer !== undefined) {
    await keep("result", answer);
    for (const [key, value] of Object.entries(jsonObjectOf(answer))) {
      if (!(key in outputs)) await keep(key, typeof value === "string" ? value : JSON.stringify(value));
    }
  }
  for (const path of task.result?.files ?? []) {
    outputs[path] ??= { ref: blobKeys.output(task.uuid, task.result?.run_id ?? "", path) };
  }
  return outputs;
}

/** The answer as a JSON object (a fenced block allowed), or {} when it is none. */
function jsonObjectOf(text: string): Record<string, unknown> {
  const fenced = /^\s*```(?:json)?\s*([\s\S]*?)\s*```\s*$/.exec(text)?.[1] ?? text;
  try {
    const parsed: unknown = JSON.parse(fenced);
    return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/**
 * Ends the run with its last node: `failed` if any node failed or was canceled, else `succeeded` (a
 * canceled run stays so). Then its stream's last message, after every node's own: a node whose messages
 * were cut short gets them here (the run's nodes are read whole this once).
 */
async function finishIfDone(deps: Deps, runId: string): Promise<void> {
  const run = await deps.workflowRuns.getWorkflowRunRecord(runId);
  if (!run || run.nodes_done < run.nodes_total) return;
  if (run.status === "running") {
    const status = run.nodes_failed > 0 ? "failed" : "succeeded";
    await deps.workflowRuns.endWorkflowRun(runId, status, deps.clock.now().toISOString());
  }
  const [found, said] = await Promise.all([
    deps.workflowRuns.getWorkflowRun(runId),
    deps.workflowRuns.listRunMessageKeys(runId),
  ]);
  if (!found) return;
  for (const node of found.nodes) {
    if (NODE_ENDED.includes(node.status) && !said.has(messageKey("finish_task", node.name)))
      await announceEnded(deps, node);
  }
  const { status, nodes_failed } = found.run;
  await say(deps, runId, "finish_workflow", "", { run_id: runId, status, nodes_failed });
}

/** The key a message is stored under: one message per type and node. */
const messageKey = (type: RunMessage["type"], node: string) => `${type}#${node}`;

/**
 * A message of the run's stream, once per type and node however often it is said, then pushed to the
 * connections watching the run (again when said again: a push cut short is done by the next).
 */
async function say(
  deps: Deps,
  runId: string,
  type: RunMessage["type"],
  node: string,
  data: Record<string, unknown>,
) {
  const time = deps.clock.now().toISOString();
  const { watchers } = await deps.workflowRuns.appendRunMessage(runId, messageKey(type, node), {
    type,
    time,
    data,
  });
  if (watchers > 0) await pushRunStream(deps, runId);
}

/** An ended node's messages: its task's start (if it had one, and it was not said yet), and its end. */
async function announceEnded(deps: Deps, node: NodeRun): Promise<void> {
  if (node.task_uuid)
    await say(deps, node.run_id, "start_task", node.name, { name: node.name, task_uuid: node.task_uuid });
  await say(deps, node.run_id, "finish_task", node.name, {
    name: node.name,
    status: node.status,
    task_uuid: node.task_uuid,
    outputs: node.outputs ?? {},
    error: node.error,
  });
}

/**
 * A connection opening on a run's stream (tasks:read; another tenant's run is a 404): it is kept with the
 * run and sent every message after `after`, then each new one, until `finish_workflow`.
 */
export async function openRunStream(
  deps: Deps,
  principal: Principal,
  stream: { workflowId: string; runId: string; connectionId: string; after: number },
) {
  const { workflowId, runId, connectionId, after } = stream;
  const run = WORKFLOW_RUN_ID.test(runId) ? await deps.workflowRuns.getWorkflowRunRecord(runId) : undefined;
  seen(principal, workflowId, runId, run);
  await watchRunStream(deps, runId, connectionId, after);
}
