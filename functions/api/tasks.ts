import { z } from "zod";
import { listTaskFiles, readTaskFile, readTaskLog } from "../../core/artifacts.ts";
import { pauseTask, reorderTask, resumeTask } from "../../core/controls.ts";
import {
  LIMITS,
  listTasksQuerySchema,
  mergeTagsSchema,
  relativePath,
  submitTaskSchema,
} from "../../core/schemas.ts";
import { TASK_STATUSES } from "../../core/status.ts";
import {
  cancelTask,
  getTask,
  listTaskEvents,
  listTasks,
  mergeTaskTags,
  submitTask,
} from "../../core/tasks.ts";
import { taskView } from "../../core/views.ts";
import { lambdaDeps } from "../_shared/composition.ts";
import { api, apiHandler, parse, type RouteMap } from "../_shared/http.ts";

const listQuery = listTasksQuerySchema.extend({ status: z.enum(TASK_STATUSES).optional() });
const reorderSchema = z.strictObject({ priority_offset: z.number().int().min(-31_536_000).max(31_536_000) });
const eventsQuery = z.strictObject({
  size: z.coerce.number().int().min(1).max(LIMITS.pageSize).default(50),
  cursor: z.string().max(2048).optional(),
});
const logsQuery = z.strictObject({ run_id: z.string().max(128).optional() });

export const routes: RouteMap = {
  "POST /v2/tasks": async (deps, { principal, body }) => {
    const { created, task } = await submitTask(deps, principal, parse(submitTaskSchema, body ?? {}));
    api.count({
      TasksSubmitted: created ? 1 : 0,
      TasksDispatchedAtSubmit: created && task.status === "dispatched" ? 1 : 0,
      SubmissionsReplayed: created ? 0 : 1,
    });
    return {
      status: created ? 201 : 200,
      data: { uuid: task.uuid, run_id: task.run_id ?? null, status: task.status },
    };
  },
  "GET /v2/tasks": async (deps, { principal, query }) => {
    const page = await listTasks(deps, principal, parse(listQuery, query));
    return { data: { ...page, tasks: page.tasks.map(taskView) } };
  },
  "GET /v2/tasks/{uuid}": async (deps, { principal, params }) => ({
    data: taskView(await getTask(deps, principal, params.uuid ?? "")),
  }),
  "DELETE /v2/tasks/{uuid}": async (deps, { principal, params }) => {
    const task = await cancelTask(deps, principal, params.uuid ?? "");
    return { data: { uuid: task.uuid, status: task.status } };
  },
  "GET /v2/tasks/{uuid}/status": async (deps, { principal, params }) => ({
    data: { status: (await getTask(deps, principal, params.uuid ?? "")).status },
  }),
  "GET /v2/tasks/{uuid}/logs": async (deps, { principal, params, query }) => ({
    raw: await readTaskLog(deps, principal, params.uuid ?? "", parse(logsQuery, query).run_id),
    contentType: "text/plain; charset=utf-8",
  }),
  "POST /v2/tasks/{uuid}/tags": async (deps, { principal, params, body }) => {
    const task = await mergeTaskTags(
      deps,
      principal,
      params.uuid ?? "",
      parse(mergeTagsSchema, body ?? {}).tags,
    );
    return { data: { uuid: task.uuid, tags: task.tags } };
  },
  "GET /v2/tasks/{uuid}/files": async (deps, { principal, params }) => ({
    data: await listTaskFiles(deps, principal, params.uuid ?? ""),
  }),
  "GET /v2/tasks/{uuid}/events": async (deps, { principal, params, query }) => ({
    data: await listTaskEvents(deps, principal, params.uuid ?? "", parse(eventsQuery, query)),
  }),
  "POST /v2/tasks/{uuid}/pause": async (deps, { principal, params }) => ({
    data: taskView(await pauseTask(deps, principal, params.uuid ?? "")),
  }),
  "POST /v2/tasks/{uuid}/resume": async (deps, { principal, params }) => ({
    data: taskView(await resumeTask(deps, principal, params.uuid ?? "")),
  }),
  "POST /v2/tasks/{uuid}/reorder": async (deps, { principal, params, body }) => ({
    data: taskView(
      await reorderTask(deps, principal, params.uuid ?? "", parse(reorderSchema, body ?? {}).priority_offset),
    ),
  }),
  "GET /v2/tasks/{uuid}/files/{path+}": async (deps, { principal, params }) => ({
    // The same rule as input_files and output_files: no `..`, no absolute path (400, naming `path`).
    raw: await readTaskFile(
      deps,
      principal,
      params.uuid ?? "",
      parse(relativePath, params.path ?? "", "path"),
    ),
    contentType: "application/octet-stream",
  }),
};

export const handler = apiHandler(routes, lambdaDeps);
