import type * as z from "zod";
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

/** Workflows: their definitions (nodes and edges). */

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
