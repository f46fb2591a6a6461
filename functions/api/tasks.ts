import type * as z from "zod";
import { listTaskFiles, readTaskFile, readTaskLog } from "../../core/artifacts.ts";
import { pauseTask, reorderTask, resumeTask } from "../../core/controls.ts";
import { LIMITS, label, relativePath } from "../../core/fields.ts";
import { queuePlace } from "../../core/queues.ts";
import type {
  listTasksQuery,
  mergeTagsSchema,
  reorderBody,
  submitTaskSchema,
  taskEventsQuery,
  taskLogQuery,
} from "../../core/requests.ts";
import {
  cancelTask,
  getTask,
  listTaskEvents,
  listTasks,
  mergeTaskTags,
  submitTask,
} from "../../core/tasks.ts";
import { taskView } from "../../core/views.ts";
import { api, parse, RAW_CONTENT_TYPES, type RouteFn } from "../_shared/http.ts";

export const submit: RouteFn<z.output<typeof submitTaskSchema>> = async (deps, request) => {
  const { created, task, place } = await submitTask(deps, request.principal, request.body, request.overQuota);
  api.count({
    TasksSubmitted: created ? 1 : 0,
    TasksDispatchedAtSubmit: created && task.status === "dispatched" ? 1 : 0,
    SubmissionsReplayed: created ? 0 : 1,
  });
  return {
    status: created ? 201 : 200,
    // A task that waits for a slot says where it waits, and for how long it should.
    data: {
      uuid: task.uuid,
      run_id: task.run_id ?? null,
      status: task.status,
      ...(place ?? (await queuePlace(deps, task))),
    },
  };
};

/** A page of tasks as clients see them. */
const tasksPage = (page: Awaited<ReturnType<typeof listTasks>>) => ({
  data: { ...page, tasks: page.tasks.map(taskView) },
});

export const list: RouteFn<unknown, z.output<typeof listTasksQuery>> = async (deps, { principal, query }) =>
  tasksPage(await listTasks(deps, principal, query));

/** An account's tasks: those whose concurrency_key it is (the TaskDispatcher's accounts). */
export const accountTasks: RouteFn<unknown, z.output<typeof listTasksQuery>> = async (
  deps,
  { principal, params, query },
) => {
  const account = parse(label(LIMITS.labelLength), params.account ?? "", "account");
  return tasksPage(await listTasks(deps, principal, query, account));
};

export const get: RouteFn = async (deps, { principal, params }) => {
  const task = await getTask(deps, principal, params.uuid ?? "");
  return { data: { ...taskView(task), ...(await queuePlace(deps, task)) } };
};

export const cancel: RouteFn = async (deps, { principal, params }) => {
  const task = await cancelTask(deps, principal, params.uuid ?? "");
  return { data: { uuid: task.uuid, status: task.status } };
};

export const status: RouteFn = async (deps, { principal, params }) => ({
  data: { status: (await getTask(deps, principal, params.uuid ?? "")).status },
});

export const log: RouteFn<unknown, z.output<typeof taskLogQuery>> = async (
  deps,
  { principal, params, query },
) => ({
  raw: await readTaskLog(deps, principal, params.uuid ?? "", query.run_id),
  contentType: RAW_CONTENT_TYPES.text,
});

export const mergeTags: RouteFn<z.output<typeof mergeTagsSchema>> = async (
  deps,
  { principal, params, body },
) => {
  const task = await mergeTaskTags(deps, principal, params.uuid ?? "", body.tags);
  return { data: { uuid: task.uuid, tags: task.tags } };
};

export const files: RouteFn = async (deps, { principal, params }) => ({
  data: await listTaskFiles(deps, principal, params.uuid ?? ""),
});

export const file: RouteFn = async (deps, { principal, params }) => ({
  // The same rule as input_files and output_files: no `..`, no absolute path (400, naming `path`).
  raw: await readTaskFile(deps, principal, params.uuid ?? "", parse(relativePath, params.path ?? "", "path")),
  contentType: RAW_CONTENT_TYPES.file,
});

export const events: RouteFn<unknown, z.output<typeof taskEventsQuery>> = async (
  deps,
  { principal, params, query },
) => ({
  data: await listTaskEvents(deps, principal, params.uuid ?? "", query),
});

export const pause: RouteFn = async (deps, { principal, params }) => ({
  data: taskView(await pauseTask(deps, principal, params.uuid ?? "")),
});

export const resume: RouteFn = async (deps, { principal, params }) => ({
  data: taskView(await resumeTask(deps, principal, params.uuid ?? "")),
});

export const reorder: RouteFn<z.output<typeof reorderBody>> = async (deps, { principal, params, body }) => ({
  data: taskView(await reorderTask(deps, principal, params.uuid ?? "", body.priority_offset)),
});
