import type * as z from "zod";
import {
  cancelWorkflowRun,
  getWorkflowRun,
  listWorkflowRuns,
  startWorkflowRun,
} from "../../core/workflow-runs.ts";
import {
  addWorkflowEdge,
  addWorkflowNode,
  createWorkflow,
  type createWorkflowBody,
  deleteWorkflowEdge,
  deleteWorkflowNode,
  type edgeQuery,
  getWorkflowTasks,
  listWorkflows,
  type WorkflowEdgeBody,
  type WorkflowNodeBody,
} from "../../core/workflows.ts";
import type { RouteFn } from "../_shared/http.ts";

/** Workflows: their definitions (nodes and edges) and their runs. */

export const create: RouteFn<z.output<typeof createWorkflowBody>> = async (deps, { principal, body }) => ({
  status: 201,
  data: await createWorkflow(deps, principal, body),
});

export const list: RouteFn = async (deps, { principal }) => ({ data: await listWorkflows(deps, principal) });

export const tasks: RouteFn = async (deps, { principal, params }) => ({
  data: await getWorkflowTasks(deps, principal, params.id ?? ""),
});

export const addTask: RouteFn<WorkflowNodeBody> = async (deps, { principal, params, body }) => ({
  status: 201,
  data: await addWorkflowNode(deps, principal, params.id ?? "", body),
});

export const deleteTask: RouteFn = async (deps, { principal, params }) => ({
  data: await deleteWorkflowNode(deps, principal, params.id ?? "", params.task_id ?? ""),
});

export const addEdge: RouteFn<WorkflowEdgeBody> = async (deps, { principal, params, body }) => ({
  status: 201,
  data: await addWorkflowEdge(deps, principal, params.id ?? "", body),
});

export const deleteEdge: RouteFn<unknown, z.output<typeof edgeQuery>> = async (
  deps,
  { principal, params, query },
) => ({
  data: await deleteWorkflowEdge(deps, principal, params.id ?? "", query),
});

export const run: RouteFn = async (deps, { principal, params }) => ({
  status: 201,
  data: await startWorkflowRun(deps, principal, params.id ?? ""),
});

export const runs: RouteFn = async (deps, { principal, params }) => ({
  data: await listWorkflowRuns(deps, principal, params.id ?? ""),
});

export const getRun: RouteFn = async (deps, { principal, params }) => ({
  data: await getWorkflowRun(deps, principal, params.id ?? "", params.run_id ?? ""),
});

export const cancelRun: RouteFn = async (deps, { principal, params }) => ({
  data: await cancelWorkflowRun(deps, principal, params.id ?? "", params.run_id ?? ""),
});
