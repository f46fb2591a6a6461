import type * as z from "zod";
import type { Scope } from "../../core/fields.ts";
import {
  addKeySchema,
  claimWorkBody,
  createTenantSchema,
  dispatcherStatusQuery,
  listRunsQuery,
  listTasksQuery,
  mergeTagsSchema,
  patchTenantSchema,
  queueQuery,
  queuesQuery,
  registerWorkerBody,
  reorderBody,
  settleWorkBody,
  submitTaskSchema,
  taskEventsQuery,
  taskLogQuery,
  templateQuery,
  uploadsBody,
  usageQuery,
  verboseQuery,
  workerReportBody,
} from "../../core/requests.ts";
import { renderBody, templateBody } from "../../core/templates.ts";
import { createWorkflowBody, edgeQuery, workflowEdgeBody, workflowNodeBody } from "../../core/workflows.ts";
import * as health from "../api/health.ts";
import * as instances from "../api/instances.ts";
import * as pools from "../api/pools.ts";
import * as tasks from "../api/tasks.ts";
import * as templates from "../api/templates.ts";
import * as tenants from "../api/tenants.ts";
import * as workers from "../api/workers.ts";
import * as workflows from "../api/workflows.ts";
import { ANSWERS } from "./answers.ts";
import type { RouteFn } from "./http.ts";

/** The Lambda functions of the API: API Gateway sends each the routes of its group. */
export const ROUTE_GROUPS = [
  "health",
  "tasks",
  "instances",
  "templates",
  "tenants",
  "pools",
  "workers",
  "workflows",
] as const;
export type RouteGroup = (typeof ROUTE_GROUPS)[number];

export interface Route {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** API Gateway resource path; `{name}` is a parameter, `{name+}` a greedy one. */
  path: string;
  group: RouteGroup;
  /** The scope the caller's key must hold; none on a public route. */
  scope?: Scope;
  /** Needs no API key. */
  public?: boolean;
  /** What it does, in a few words (the API document's summary). */
  summary: string;
  /** Each request is a submission, metered with it (core/limits.ts, countRequest). */
  submission?: boolean;
  /** Answers 201 with what it created (a submission's idempotent replay answers 200). */
  creates?: boolean;
  /** The envelope's `data` it answers, where that has a schema (the API document and the SDK show it). */
  answer?: z.ZodType;
  /** Fields of the envelope beside `data`, where an answer keeps `data` as another API gave it. */
  beside?: z.ZodObject;
  /** Answers raw bytes, not the envelope: a log's text, a file's bytes, or a JSON document of its own. */
  raw?: "text" | "file" | "document";
  /** The JSON body and the query string, parsed before the handler runs (an absent body is `{}`). */
  body?: z.ZodType;
  query?: z.ZodType;
  // biome-ignore lint/suspicious/noExplicitAny: each entry's handler takes what its own schemas give (route() checks it).
  handler: RouteFn<any, any>;
}

type Parsed<Schema, Otherwise> = Schema extends z.ZodType ? z.output<Schema> : Otherwise;

/** One entry of the table, whose handler must take what the entry's body and query schemas give. */
function route<
  Body extends z.ZodType | undefined = undefined,
  Query extends z.ZodType | undefined = undefined,
>(
  entry: Omit<Route, "body" | "query" | "handler"> & {
    body?: Body;
    query?: Query;
    handler: RouteFn<Parsed<Body, unknown>, Parsed<Query, Record<string, string>>>;
  },
): Route {
  return entry;
}

/**
 * The route table: every HTTP route, once. API Gateway (infra), the local server and the tests read it;
 * the handler is what serves the route on Lambda and locally alike.
 */
export const ROUTES: readonly Route[] = [
  route({
    method: "GET",
    path: "/v2/health",
    summary: "Health of the scheduler and its stores",
    group: "health",
    public: true,
    handler: health.report,
  }),
  route({
    method: "GET",
    path: "/v2/openapi.json",
    summary: "This API's OpenAPI 3.1 document",
    group: "health",
    raw: "document",
    public: true,
    handler: health.apiDocument,
  }),

  route({
    method: "POST",
    path: "/v2/tasks",
    summary: "Submit a task",
    creates: true,
    group: "tasks",
    scope: "tasks:write",
    submission: true,
    body: submitTaskSchema,
    answer: ANSWERS.submitted,
    handler: tasks.submit,
  }),
  route({
    method: "GET",
    path: "/v2/tasks",
    summary: "List tasks: by status, newest first within each, with filters",
    group: "tasks",
    scope: "tasks:read",
    query: listTasksQuery,
    answer: ANSWERS.tasks,
    handler: tasks.list,
  }),
  route({
    method: "GET",
    path: "/v2/accounts/{account}/tasks",
    summary: "List an account's tasks: those whose concurrency_key it is, newest first",
    group: "tasks",
    scope: "tasks:read",
    query: listTasksQuery,
    answer: ANSWERS.tasks,
    handler: tasks.accountTasks,
  }),
  route({
    method: "GET",
    path: "/v2/tasks/{uuid}",
    summary: "Read a task",
    group: "tasks",
    scope: "tasks:read",
    answer: ANSWERS.task,
    handler: tasks.get,
  }),
  route({
    method: "DELETE",
    path: "/v2/tasks/{uuid}",
    summary: "Cancel a task",
    group: "tasks",
    scope: "tasks:write",
    answer: ANSWERS.canceled,
    handler: tasks.cancel,
  }),
  route({
    method: "GET",
    path: "/v2/tasks/{uuid}/status",
    summary: "Read a task's status",
    group: "tasks",
    scope: "tasks:read",
    answer: ANSWERS.taskStatus,
    handler: tasks.status,
  }),
  route({
    method: "GET",
    path: "/v2/tasks/{uuid}/logs",
    summary: "Read a task's log (its latest run, or `run_id`'s)",
    raw: "text",
    group: "tasks",
    scope: "tasks:read",
    query: taskLogQuery,
    handler: tasks.log,
  }),
  route({
    method: "POST",
    path: "/v2/tasks/{uuid}/tags",
    summary: "Merge tags into a task's",
    group: "tasks",
    scope: "tasks:write",
    body: mergeTagsSchema,
    answer: ANSWERS.taskTags,
    handler: tasks.mergeTags,
  }),
  route({
    method: "GET",
    path: "/v2/tasks/{uuid}/files",
    summary: "List a task's output files",
    group: "tasks",
    scope: "tasks:read",
    handler: tasks.files,
  }),
  route({
    method: "GET",
    path: "/v2/tasks/{uuid}/files/{path+}",
    summary: "Download an output file",
    raw: "file",
    group: "tasks",
    scope: "tasks:read",
    handler: tasks.file,
  }),
  route({
    method: "GET",
    path: "/v2/tasks/{uuid}/events",
    summary: "List a task's events, oldest first",
    group: "tasks",
    scope: "tasks:read",
    query: taskEventsQuery,
    handler: tasks.events,
  }),
  route({
    method: "POST",
    path: "/v2/tasks/{uuid}/pause",
    summary: "Pause a queued or scheduled task",
    group: "tasks",
    scope: "tasks:write",
    answer: ANSWERS.task,
    handler: tasks.pause,
  }),
  route({
    method: "POST",
    path: "/v2/tasks/{uuid}/resume",
    summary: "Resume a paused task",
    group: "tasks",
    scope: "tasks:write",
    answer: ANSWERS.task,
    handler: tasks.resume,
  }),
  route({
    method: "POST",
    path: "/v2/tasks/{uuid}/reorder",
    summary: "Move a task's next run by `priority_offset` seconds",
    group: "tasks",
    scope: "tasks:write",
    body: reorderBody,
    answer: ANSWERS.task,
    handler: tasks.reorder,
  }),

  route({
    method: "GET",
    path: "/v2/instances",
    summary: "List runs (instances): by status, newest first within each",
    group: "instances",
    scope: "tasks:read",
    query: listRunsQuery,
    answer: ANSWERS.runs,
    handler: instances.list,
  }),
  route({
    method: "GET",
    path: "/v2/instances/{run_id}",
    summary: "Read a run",
    group: "instances",
    scope: "tasks:read",
    answer: ANSWERS.run,
    handler: instances.get,
  }),
  route({
    method: "GET",
    path: "/v2/instances/{run_id}/status",
    summary: "Read a run's status",
    group: "instances",
    scope: "tasks:read",
    answer: ANSWERS.runStatus,
    handler: instances.status,
  }),
  route({
    method: "GET",
    path: "/v2/instances/{run_id}/logs",
    summary: "Read a run's log",
    raw: "text",
    group: "instances",
    scope: "tasks:read",
    handler: instances.log,
  }),
  route({
    method: "POST",
    path: "/v2/instances/{run_id}/tags",
    summary: "Merge tags into a run's",
    group: "instances",
    scope: "tasks:write",
    body: mergeTagsSchema,
    answer: ANSWERS.runTags,
    handler: instances.mergeTags,
  }),

  route({
    method: "POST",
    path: "/v2/templates",
    summary: "Create a template (revision 1)",
    group: "templates",
    scope: "tasks:write",
    creates: true,
    body: templateBody,
    handler: templates.create,
  }),
  route({
    method: "PUT",
    path: "/v2/templates/{name}",
    summary: "Add a template's next revision",
    group: "templates",
    scope: "tasks:write",
    body: templateBody,
    handler: templates.update,
  }),
  route({
    method: "GET",
    path: "/v2/templates",
    summary: "List templates: names, or (verbose) their latest revisions",
    group: "templates",
    scope: "tasks:read",
    query: verboseQuery,
    handler: templates.list,
  }),
  route({
    method: "GET",
    path: "/v2/templates/{name}",
    summary: "Read a template's latest revision, or `revision`",
    group: "templates",
    scope: "tasks:read",
    query: templateQuery,
    handler: templates.get,
  }),
  route({
    method: "POST",
    path: "/v2/templates/{name}/render",
    summary: "Render a template with `value` and `extra`: a dry run that stores nothing",
    group: "templates",
    scope: "tasks:read",
    body: renderBody,
    handler: templates.render,
  }),

  route({
    method: "POST",
    path: "/v2/tenants",
    summary: "Create a tenant and its first API key",
    creates: true,
    group: "tenants",
    scope: "admin",
    body: createTenantSchema,
    handler: tenants.create,
  }),
  route({
    method: "GET",
    path: "/v2/tenants",
    summary: "List tenants",
    group: "tenants",
    scope: "admin",
    handler: tenants.list,
  }),
  route({
    method: "PATCH",
    path: "/v2/tenants/{id}",
    summary:
      "Set a tenant's daily budget {usd_per_day?, tokens_per_day?, on_exceed: wait | refuse} (null: none)",
    group: "tenants",
    scope: "admin",
    body: patchTenantSchema,
    handler: tenants.patch,
  }),
  route({
    method: "GET",
    path: "/v2/tenants/{id}/usage",
    summary:
      "A tenant's spend by day, tool and pool, and what its budget has committed (a tenant key: its own)",
    group: "tenants",
    scope: "tasks:read",
    query: usageQuery,
    handler: tenants.usage,
  }),
  route({
    method: "POST",
    path: "/v2/tenants/{id}/keys",
    summary: "Add an API key to a tenant",
    creates: true,
    group: "tenants",
    scope: "admin",
    body: addKeySchema,
    handler: tenants.addKey,
  }),
  route({
    method: "GET",
    path: "/v2/tenants/{id}/keys",
    summary: "List a tenant's API keys",
    group: "tenants",
    scope: "admin",
    handler: tenants.listKeys,
  }),
  route({
    method: "DELETE",
    path: "/v2/tenants/{id}/keys/{key_id}",
    summary: "Revoke an API key",
    group: "tenants",
    scope: "admin",
    handler: tenants.revokeKey,
  }),

  route({
    method: "GET",
    path: "/v2/pools",
    summary: "List the pools: usage, tasks holding a slot, pause",
    group: "pools",
    scope: "tasks:read",
    handler: pools.list,
  }),
  route({
    method: "GET",
    path: "/v2/pools/{name}",
    summary: "One pool; verbose adds its configuration and workers",
    group: "pools",
    scope: "tasks:read",
    query: verboseQuery,
    handler: pools.get,
  }),
  route({
    method: "GET",
    path: "/v2/queues",
    summary: "List the pools' queues: size, waiting, running, the expected wait of a new task",
    group: "pools",
    scope: "tasks:read",
    query: queuesQuery,
    handler: pools.queues,
  }),
  route({
    method: "GET",
    path: "/v2/policies",
    summary: "Every pool's admission policy: what it accepts of a submission",
    group: "pools",
    scope: "tasks:read",
    handler: pools.policies,
  }),
  route({
    method: "GET",
    path: "/v2/policys",
    summary: "The same as /v2/policies, in the v2 API's spelling",
    group: "pools",
    scope: "tasks:read",
    handler: pools.policys,
  }),
  route({
    method: "GET",
    path: "/v2/slas",
    summary:
      "Each pool's SLA (the wait a share of its tasks should start within), measured now, and whether it is met",
    group: "pools",
    scope: "tasks:read",
    answer: ANSWERS.slas,
    handler: pools.slas,
  }),
  route({
    method: "GET",
    path: "/v2/status",
    summary:
      "Each part (table, pool queues, workers, tick, events relay), whether it is well, and what is wrong with it",
    group: "pools",
    scope: "admin",
    answer: ANSWERS.systemStatus,
    handler: pools.status,
  }),
  route({
    method: "POST",
    path: "/v2/reload",
    summary:
      'Re-read the pool configuration and apply its runtime fields without a deploy: data is "reload OK", ' +
      "`changes` and `warnings` beside it",
    group: "pools",
    scope: "admin",
    answer: ANSWERS.reloaded,
    beside: ANSWERS.reloadedBeside,
    handler: pools.reload,
  }),
  route({
    method: "GET",
    path: "/v2/queues/{name}",
    summary:
      "One queue; verbose adds its head (the next tasks to be admitted) and the estimates' calibration",
    group: "pools",
    scope: "tasks:read",
    query: queueQuery,
    handler: pools.queue,
  }),
  route({
    method: "GET",
    path: "/v2/tool-accounts",
    summary:
      "Each CLI account of the pools: available, limited until its usage window resets, or disabled; its pools and last usage",
    group: "pools",
    scope: "tasks:read",
    answer: ANSWERS.toolAccounts,
    handler: pools.toolAccounts,
  }),
  route({
    method: "POST",
    path: "/v2/tool-accounts/{tool}/{account}/clear",
    summary: "Make a CLI account available: clear its limit (or its disabling); its pools admit again",
    group: "pools",
    scope: "admin",
    answer: ANSWERS.toolAccount,
    handler: pools.clearToolAccount,
  }),
  route({
    method: "POST",
    path: "/v2/tool-accounts/{tool}/{account}/disable",
    summary: "Disable a CLI account: its pools admit nothing, its movable queued tasks go to other accounts",
    group: "pools",
    scope: "admin",
    answer: ANSWERS.toolAccount,
    handler: pools.disableToolAccount,
  }),
  route({
    method: "POST",
    path: "/v2/pools/{name}/pause",
    summary: "Pause admission into a pool",
    group: "pools",
    scope: "admin",
    handler: pools.pause,
  }),
  route({
    method: "POST",
    path: "/v2/pools/{name}/resume",
    summary: "Resume admission into a pool",
    group: "pools",
    scope: "admin",
    handler: pools.resume,
  }),
  route({
    method: "POST",
    path: "/v2/dispatcher/start",
    summary: "Start admitting in every pool",
    group: "pools",
    scope: "admin",
    handler: pools.startDispatcher,
  }),
  route({
    method: "POST",
    path: "/v2/dispatcher/stop",
    summary: "Stop admitting in every pool",
    group: "pools",
    scope: "admin",
    handler: pools.stopDispatcher,
  }),
  route({
    method: "GET",
    path: "/v2/dispatcher/status",
    summary: "Admission state and counts per pool",
    group: "pools",
    scope: "admin",
    query: dispatcherStatusQuery,
    handler: pools.dispatcher,
  }),

  route({
    method: "POST",
    path: "/v2/workflows",
    summary: "Create a workflow: a name, and optionally its tasks and edges at once",
    creates: true,
    group: "workflows",
    scope: "tasks:write",
    body: createWorkflowBody,
    handler: workflows.create,
  }),
  route({
    method: "GET",
    path: "/v2/workflows",
    summary: "List the caller's workflows, newest first",
    group: "workflows",
    scope: "tasks:read",
    handler: workflows.list,
  }),
  route({
    method: "GET",
    path: "/v2/workflows/{id}/tasks",
    summary: "A workflow's tasks (nodes) and edges",
    group: "workflows",
    scope: "tasks:read",
    handler: workflows.tasks,
  }),
  route({
    method: "POST",
    path: "/v2/workflows/{id}/tasks",
    summary: "Add a task (node) to a workflow; its `from` inputs add the edges from their nodes",
    creates: true,
    group: "workflows",
    scope: "tasks:write",
    body: workflowNodeBody,
    handler: workflows.addTask,
  }),
  route({
    method: "DELETE",
    path: "/v2/workflows/{id}/tasks/{task_id}",
    summary: "Delete a task (node) and its edges, unless another node's inputs come from it",
    group: "workflows",
    scope: "tasks:write",
    handler: workflows.deleteTask,
  }),
  route({
    method: "POST",
    path: "/v2/workflows/{id}/edges",
    summary:
      "Add an edge `{source, target, on}` (on: succeeded, failed or always); one closing a cycle is a 400",
    creates: true,
    group: "workflows",
    scope: "tasks:write",
    body: workflowEdgeBody,
    handler: workflows.addEdge,
  }),
  route({
    method: "DELETE",
    path: "/v2/workflows/{id}/edges",
    summary: "Delete the edge `?source=&target=`, unless an input of its target comes from its source",
    group: "workflows",
    scope: "tasks:write",
    query: edgeQuery,
    handler: workflows.deleteEdge,
  }),
  route({
    method: "POST",
    path: "/v2/workflows/{id}/runs",
    summary: "Run a workflow: snapshots it, and submits its tasks without parents",
    creates: true,
    group: "workflows",
    scope: "tasks:write",
    handler: workflows.run,
  }),
  route({
    method: "GET",
    path: "/v2/workflows/{id}/runs",
    summary: "A workflow's runs, newest first",
    group: "workflows",
    scope: "tasks:read",
    handler: workflows.runs,
  }),
  route({
    method: "GET",
    path: "/v2/workflows/{id}/runs/{run_id}",
    summary: "A workflow run: its status, and each node's status, task and outputs",
    group: "workflows",
    scope: "tasks:read",
    handler: workflows.getRun,
  }),
  route({
    method: "DELETE",
    path: "/v2/workflows/{id}/runs/{run_id}",
    summary: "Cancel a workflow run: its running and pending nodes",
    group: "workflows",
    scope: "tasks:write",
    handler: workflows.cancelRun,
  }),

  route({
    method: "GET",
    path: "/v2/workers",
    summary: "List the workers: pool, state (active, draining, offline), resources, slots and running jobs",
    group: "workers",
    scope: "admin",
    answer: ANSWERS.workers,
    handler: workers.list,
  }),
  route({
    method: "POST",
    path: "/v2/workers",
    summary:
      "Register a self-hosted worker of a pool: its id and its key (shown once), which takes that pool's work only",
    creates: true,
    group: "workers",
    scope: "admin",
    body: registerWorkerBody,
    answer: ANSWERS.registeredWorker,
    handler: workers.register,
  }),
  route({
    method: "DELETE",
    path: "/v2/workers/{id}",
    summary:
      "Drain a worker: no new work, its running jobs finish, then it exits (an offline self-hosted one is removed)",
    group: "workers",
    scope: "admin",
    answer: ANSWERS.drainedWorker,
    handler: workers.drain,
  }),
  route({
    method: "POST",
    path: "/v2/worker/report",
    summary: "A self-hosted worker reports what it runs: answers its settings and whether it is draining",
    group: "workers",
    scope: "worker",
    body: workerReportBody,
    answer: ANSWERS.workerSettings,
    handler: workers.report,
  }),
  route({
    method: "POST",
    path: "/v2/worker/claims",
    summary: "A self-hosted worker takes up to `max` runs of its pool, long-polling up to `wait_seconds`",
    group: "workers",
    scope: "worker",
    body: claimWorkBody,
    answer: ANSWERS.claimedWork,
    handler: workers.claim,
  }),
  route({
    method: "POST",
    path: "/v2/worker/runs/{run_id}/lease",
    summary: "A self-hosted worker extends its lease on a run: the new expiry, or `stop` (canceled, lost)",
    group: "workers",
    scope: "worker",
    answer: ANSWERS.renewedLease,
    handler: workers.lease,
  }),
  route({
    method: "POST",
    path: "/v2/worker/runs/{run_id}/settle",
    summary: "A self-hosted worker records how its run ended; `settled` false when it had ended elsewhere",
    group: "workers",
    scope: "worker",
    body: settleWorkBody,
    answer: ANSWERS.settledWork,
    handler: workers.settle,
  }),
  route({
    method: "POST",
    path: "/v2/worker/runs/{run_id}/release",
    summary: "A self-hosted worker frees the slots its canceled run kept, once the run's process is gone",
    group: "workers",
    scope: "worker",
    answer: ANSWERS.releasedWork,
    handler: workers.release,
  }),
  route({
    method: "POST",
    path: "/v2/worker/runs/{run_id}/uploads",
    summary: "A self-hosted worker's URLs to PUT its run's log and declared output files to",
    group: "workers",
    scope: "worker",
    body: uploadsBody,
    answer: ANSWERS.uploadUrls,
    handler: workers.uploads,
  }),
];

/** decodeURIComponent, or undefined for a malformed escape (e.g. `%E0%A4%A`): such a path matches no route. */
function decoded(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
/** Matches a concrete path against a route path; returns the path parameters, or undefined. */
export function matchPath(routePath: string, path: string): Record<string, string> | undefined {
  const want = routePath.split("/").filter(Boolean);
  const got = path.split("/").filter(Boolean);
  const params: Record<string, string> = {};
  for (const [i, segment] of want.entries()) {
    const greedy = /^\{(.+)\+\}$/.exec(segment);
    if (greedy?.[1]) {
      if (i >= got.length) return undefined;
      const rest = got.slice(i).map(decoded);
      if (rest.some((part) => part === undefined)) return undefined;
      params[greedy[1]] = rest.join("/");
      return params;
    }
    const value = got[i];
    if (value === undefined) return undefined;
    const param = /^\{(.+)\}$/.exec(segment);
    if (param?.[1]) {
      const text = decoded(value);
      if (text === undefined) return undefined;
      params[param[1]] = text;
    } else if (segment !== value) return undefined;
  }
  return want.length === got.length ? params : undefined;
}
