/**
 * Every operation of the API, by the operation id the OpenAPI document gives it (functions/_shared/openapi.ts):
 * its method and path, what it takes and what it answers. A test holds this to the route table.
 */
import type * as z from "zod";
import type { listTaskFiles } from "../core/artifacts.ts";
import type { tenantUsage } from "../core/budgets.ts";
import type { dispatcherStatus, setPoolPaused } from "../core/controls.ts";
import type { HealthReport } from "../core/health.ts";
import type { listPolicies } from "../core/policies.ts";
import type { getPool, getQueue, listPools, listQueues } from "../core/queues.ts";
import type {
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
} from "../core/requests.ts";
import type { listTaskEvents } from "../core/tasks.ts";
import type {
  createTemplate,
  getTemplate,
  listTemplates,
  renderBody,
  renderTemplate,
  templateBody,
  updateTemplate,
} from "../core/templates.ts";
import type {
  addTenantKey,
  createTenant,
  listTenantKeys,
  listTenants,
  patchTenant,
} from "../core/tenants.ts";
import type {
  cancelWorkflowRun,
  getWorkflowRun,
  listWorkflowRuns,
  startWorkflowRun,
} from "../core/workflow-runs.ts";
import type {
  addWorkflowEdge,
  addWorkflowNode,
  createWorkflow,
  createWorkflowBody,
  deleteWorkflowEdge,
  deleteWorkflowNode,
  edgeQuery,
  getWorkflowTasks,
  listWorkflows,
  workflowEdgeBody,
  workflowNodeBody,
} from "../core/workflows.ts";
import type { ANSWERS } from "../functions/_shared/answers.ts";

export const OPERATIONS = {
  "health.report": ["GET", "/v2/health"],
  "health.apiDocument": ["GET", "/v2/openapi.json"],
  "tasks.submit": ["POST", "/v2/tasks"],
  "tasks.list": ["GET", "/v2/tasks"],
  "tasks.accountTasks": ["GET", "/v2/accounts/{account}/tasks"],
  "tasks.get": ["GET", "/v2/tasks/{uuid}"],
  "tasks.cancel": ["DELETE", "/v2/tasks/{uuid}"],
  "tasks.status": ["GET", "/v2/tasks/{uuid}/status"],
  "tasks.log": ["GET", "/v2/tasks/{uuid}/logs"],
  "tasks.mergeTags": ["POST", "/v2/tasks/{uuid}/tags"],
  "tasks.files": ["GET", "/v2/tasks/{uuid}/files"],
  "tasks.file": ["GET", "/v2/tasks/{uuid}/files/{path+}"],
  "tasks.events": ["GET", "/v2/tasks/{uuid}/events"],
  "tasks.pause": ["POST", "/v2/tasks/{uuid}/pause"],
  "tasks.resume": ["POST", "/v2/tasks/{uuid}/resume"],
  "tasks.reorder": ["POST", "/v2/tasks/{uuid}/reorder"],
  "instances.list": ["GET", "/v2/instances"],
  "instances.get": ["GET", "/v2/instances/{run_id}"],
  "instances.status": ["GET", "/v2/instances/{run_id}/status"],
  "instances.log": ["GET", "/v2/instances/{run_id}/logs"],
  "instances.mergeTags": ["POST", "/v2/instances/{run_id}/tags"],
  "templates.create": ["POST", "/v2/templates"],
  "templates.update": ["PUT", "/v2/templates/{name}"],
  "templates.list": ["GET", "/v2/templates"],
  "templates.get": ["GET", "/v2/templates/{name}"],
  "templates.render": ["POST", "/v2/templates/{name}/render"],
  "tenants.create": ["POST", "/v2/tenants"],
  "tenants.list": ["GET", "/v2/tenants"],
  "tenants.patch": ["PATCH", "/v2/tenants/{id}"],
  "tenants.usage": ["GET", "/v2/tenants/{id}/usage"],
  "tenants.addKey": ["POST", "/v2/tenants/{id}/keys"],
  "tenants.listKeys": ["GET", "/v2/tenants/{id}/keys"],
  "tenants.revokeKey": ["DELETE", "/v2/tenants/{id}/keys/{key_id}"],
  "pools.list": ["GET", "/v2/pools"],
  "pools.get": ["GET", "/v2/pools/{name}"],
  "pools.queues": ["GET", "/v2/queues"],
  "pools.queue": ["GET", "/v2/queues/{name}"],
  "pools.policies": ["GET", "/v2/policies"],
  "pools.reload": ["POST", "/v2/reload"],
  "pools.status": ["GET", "/v2/status"],
  "pools.slas": ["GET", "/v2/slas"],
  "pools.policys": ["GET", "/v2/policys"],
  "pools.pause": ["POST", "/v2/pools/{name}/pause"],
  "pools.resume": ["POST", "/v2/pools/{name}/resume"],
  "pools.toolAccounts": ["GET", "/v2/tool-accounts"],
  "pools.clearToolAccount": ["POST", "/v2/tool-accounts/{tool}/{account}/clear"],
  "pools.disableToolAccount": ["POST", "/v2/tool-accounts/{tool}/{account}/disable"],
  "pools.startDispatcher": ["POST", "/v2/dispatcher/start"],
  "pools.stopDispatcher": ["POST", "/v2/dispatcher/stop"],
  "pools.dispatcher": ["GET", "/v2/dispatcher/status"],
  "workflows.create": ["POST", "/v2/workflows"],
  "workflows.list": ["GET", "/v2/workflows"],
  "workflows.tasks": ["GET", "/v2/workflows/{id}/tasks"],
  "workflows.addTask": ["POST", "/v2/workflows/{id}/tasks"],
  "workflows.deleteTask": ["DELETE", "/v2/workflows/{id}/tasks/{task_id}"],
  "workflows.addEdge": ["POST", "/v2/workflows/{id}/edges"],
  "workflows.deleteEdge": ["DELETE", "/v2/workflows/{id}/edges"],
  "workflows.run": ["POST", "/v2/workflows/{id}/runs"],
  "workflows.runs": ["GET", "/v2/workflows/{id}/runs"],
  "workflows.getRun": ["GET", "/v2/workflows/{id}/runs/{run_id}"],
  "workflows.cancelRun": ["DELETE", "/v2/workflows/{id}/runs/{run_id}"],
  "workers.list": ["GET", "/v2/workers"],
  "workers.register": ["POST", "/v2/workers"],
  "workers.drain": ["DELETE", "/v2/workers/{id}"],
  "workers.report": ["POST", "/v2/worker/report"],
  "workers.claim": ["POST", "/v2/worker/claims"],
  "workers.lease": ["POST", "/v2/worker/runs/{run_id}/lease"],
  "workers.settle": ["POST", "/v2/worker/runs/{run_id}/settle"],
  "workers.release": ["POST", "/v2/worker/runs/{run_id}/release"],
  "workers.uploads": ["POST", "/v2/worker/runs/{run_id}/uploads"],
} as const satisfies Record<string, readonly ["GET" | "POST" | "PUT" | "PATCH" | "DELETE", string]>;

export type OperationId = keyof typeof OPERATIONS;

/** `{name}` and `{name+}` of a path, as an object of strings. */
type PathParams<Path extends string> = Path extends `${string}{${infer Name}}${infer Rest}`
  ? { [K in Name extends `${infer Greedy}+` ? Greedy : Name]: string } & PathParams<Rest>
  : unknown;

type Answer<T> = Awaited<ReturnType<T extends (...args: never[]) => unknown ? T : never>>;

/** A route's answer as its schema in functions/_shared/answers.ts gives it. */
type Data<Name extends keyof typeof ANSWERS> = z.output<(typeof ANSWERS)[Name]>;

/** What each operation takes (beyond its path parameters) and answers (the envelope's `data`, or text). */
interface Shapes {
  "health.report": { answer: HealthReport };
  "health.apiDocument": { answer: Record<string, unknown> };
  "tasks.submit": { body: z.input<typeof submitTaskSchema>; answer: Data<"submitted"> };
  "tasks.list": { query: z.input<typeof listTasksQuery>; answer: Data<"tasks"> };
  "tasks.accountTasks": { query: z.input<typeof listTasksQuery>; answer: Data<"tasks"> };
  "tasks.get": { answer: Data<"task"> };
  "tasks.cancel": { answer: Data<"canceled"> };
  "tasks.status": { answer: Data<"taskStatus"> };
  "tasks.log": { query: z.input<typeof taskLogQuery>; answer: string };
  "tasks.mergeTags": { body: z.input<typeof mergeTagsSchema>; answer: Data<"taskTags"> };
  "tasks.files": { answer: Answer<typeof listTaskFiles> };
  "tasks.file": { answer: Uint8Array };
  "tasks.events": { query: z.input<typeof taskEventsQuery>; answer: Answer<typeof listTaskEvents> };
  "tasks.pause": { answer: Data<"task"> };
  "tasks.resume": { answer: Data<"task"> };
  "tasks.reorder": { body: z.input<typeof reorderBody>; answer: Data<"task"> };
  "instances.list": { query: z.input<typeof listRunsQuery>; answer: Data<"runs"> };
  "instances.get": { answer: Data<"run"> };
  "instances.status": { answer: Data<"runStatus"> };
  "instances.log": { answer: string };
  "instances.mergeTags": { body: z.input<typeof mergeTagsSchema>; answer: Data<"runTags"> };
  "templates.create": { body: z.input<typeof templateBody>; answer: Answer<typeof createTemplate> };
  "templates.update": { body: z.input<typeof templateBody>; answer: Answer<typeof updateTemplate> };
  "templates.list": { query: z.input<typeof verboseQuery>; answer: Answer<typeof listTemplates> };
  "templates.get": { query: z.input<typeof templateQuery>; answer: Answer<typeof getTemplate> };
  "templates.render": { body: z.input<typeof renderBody>; answer: Answer<typeof renderTemplate> };
  "tenants.create": { body: z.input<typeof createTenantSchema>; answer: Answer<typeof createTenant> };
  "tenants.list": { answer: Answer<typeof listTenants> };
  "tenants.patch": { body: z.input<typeof patchTenantSchema>; answer: Answer<typeof patchTenant> };
  "tenants.usage": { query: z.input<typeof usageQuery>; answer: Answer<typeof tenantUsage> };
  "tenants.addKey": { body: z.input<typeof addKeySchema>; answer: Answer<typeof addTenantKey> };
  "tenants.listKeys": { answer: Answer<typeof listTenantKeys> };
  "tenants.revokeKey": { answer: unknown };
  "pools.list": { answer: Answer<typeof listPools> };
  "pools.get": { query: z.input<typeof verboseQuery>; answer: Answer<typeof getPool> };
  "pools.queues": { query: z.input<typeof queuesQuery>; answer: Answer<typeof listQueues> };
  "pools.queue": { query: z.input<typeof queueQuery>; answer: Answer<typeof getQueue> };
  "pools.policies": { answer: Answer<typeof listPolicies> };
  "pools.reload": { answer: Data<"reloaded">; beside: Data<"reloadedBeside"> };
  "pools.status": { answer: Data<"systemStatus"> };
  "pools.slas": { answer: Data<"slas"> };
  "pools.policys": { answer: Answer<typeof listPolicies> };
  "pools.pause": { answer: Answer<typeof setPoolPaused> };
  "pools.resume": { answer: Answer<typeof setPoolPaused> };
  "pools.toolAccounts": { answer: Data<"toolAccounts"> };
  "pools.clearToolAccount": { answer: Data<"toolAccount"> };
  "pools.disableToolAccount": { answer: Data<"toolAccount"> };
  "pools.startDispatcher": { answer: Answer<typeof dispatcherStatus> };
  "pools.stopDispatcher": { answer: Answer<typeof dispatcherStatus> };
  "pools.dispatcher": {
    query: z.input<typeof dispatcherStatusQuery>;
    answer: Answer<typeof dispatcherStatus>;
  };
  "workflows.create": { body: z.input<typeof createWorkflowBody>; answer: Answer<typeof createWorkflow> };
  "workflows.list": { answer: Answer<typeof listWorkflows> };
  "workflows.tasks": { answer: Answer<typeof getWorkflowTasks> };
  "workflows.addTask": { body: z.input<typeof workflowNodeBody>; answer: Answer<typeof addWorkflowNode> };
  "workflows.deleteTask": { answer: Answer<typeof deleteWorkflowNode> };
  "workflows.addEdge": { body: z.input<typeof workflowEdgeBody>; answer: Answer<typeof addWorkflowEdge> };
  "workflows.deleteEdge": { query: z.input<typeof edgeQuery>; answer: Answer<typeof deleteWorkflowEdge> };
  "workflows.run": { answer: Answer<typeof startWorkflowRun> };
  "workflows.runs": { answer: Answer<typeof listWorkflowRuns> };
  "workflows.getRun": { answer: Answer<typeof getWorkflowRun> };
  "workflows.cancelRun": { answer: Answer<typeof cancelWorkflowRun> };
  "workers.list": { answer: Data<"workers"> };
  "workers.register": { body: z.input<typeof registerWorkerBody>; answer: Data<"registeredWorker"> };
  "workers.drain": { answer: Data<"drainedWorker"> };
  "workers.report": { body: z.input<typeof workerReportBody>; answer: Data<"workerSettings"> };
  "workers.claim": { body: z.input<typeof claimWorkBody>; answer: Data<"claimedWork"> };
  "workers.lease": { answer: Data<"renewedLease"> };
  "workers.settle": { body: z.input<typeof settleWorkBody>; answer: Data<"settledWork"> };
  "workers.release": { answer: Data<"releasedWork"> };
  "workers.uploads": { body: z.input<typeof uploadsBody>; answer: Data<"uploadUrls"> };
}

/** The argument of an operation: its path parameters, `query` and `body` where it has them. */
export type Input<Op extends OperationId> = PathParams<(typeof OPERATIONS)[Op][1]> &
  (Shapes[Op] extends { query: infer Q } ? { query?: Q } : unknown) &
  (Shapes[Op] extends { body: infer B } ? { body: B } : unknown);

export type Output<Op extends OperationId> = Shapes[Op]["answer"];
/** The fields an operation answers beside `data`, in its envelope. */
export type Beside<Op extends OperationId> = Shapes[Op] extends { beside: infer B } ? B : unknown;
