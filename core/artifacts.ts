import type { Principal } from "./auth.ts";
import type { Deps } from "./deps.ts";
import { ERROR_CODES, NotFoundError, runNotFound } from "./errors.ts";
import { blobKeys } from "./identifiers.ts";
import type { Run, Task } from "./records.ts";
import { getRun } from "./runs.ts";
import { getTask } from "./tasks.ts";

export interface TaskFile {
  path: string;
  is_input: boolean;
  size_bytes: number;
}

/** Where the output files of a task's result are: under the run that produced it. */
const resultPrefix = (task: Task) =>
  task.result?.run_id === undefined ? undefined : blobKeys.outputPrefix(task.uuid, task.result.run_id);

/** The task's input files and the output files of the run its result came from. */
export async function listTaskFiles(deps: Pick<Deps, "tasks" | "blobs">, principal: Principal, uuid: string) {
  const task = await getTask(deps, principal, uuid);
  const listed = async (prefix: string | undefined, isInput: boolean) =>
    prefix === undefined
      ? []
      : (await deps.blobs.list(prefix)).map(
          (blob): TaskFile => ({
            path: blob.key.slice(prefix.length),
            is_input: isInput,
            size_bytes: blob.size,
          }),
        );
  const [inputs, outputs] = await Promise.all([
    listed(blobKeys.inputPrefix(task.uuid), true),
    listed(resultPrefix(task), false),
  ]);
  return [...inputs, ...outputs];
}

/** One file's bytes: the result's output file at that path, else the input file. */
export async function readTaskFile(
  deps: Pick<Deps, "tasks" | "blobs">,
  principal: Principal,
  uuid: string,
  path: string,
): Promise<Uint8Array> {
  const task = await getTask(deps, principal, uuid);
  const outputs = resultPrefix(task);
  const body =
    (outputs === undefined ? undefined : await deps.blobs.get(`${outputs}${path}`)) ??
    (await deps.blobs.get(blobKeys.input(task.uuid, path)));
  if (!body) throw new NotFoundError(ERROR_CODES.taskNotFound, `file ${path} of task ${uuid} not found`);
  return body;
}

/** A run's log text: the task's latest run, or the one named. Empty while the run has written none. */
export async function readTaskLog(
  deps: Pick<Deps, "tasks" | "blobs" | "podLogs">,
  principal: Principal,
  uuid: string,
  runId?: string,
): Promise<string> {
  const task = await getTask(deps, principal, uuid);
  const id = runId ?? task.run_id;
  if (!id) throw runNotFound(`of task ${uuid}`);
  const run = await getRun(deps, principal, id);
  if (run.task_uuid !== task.uuid) throw runNotFound(id);
  return logText(deps, run);
}

export async function readRunLog(
  deps: Pick<Deps, "tasks" | "blobs" | "podLogs">,
  principal: Principal,
  runId: string,
) {
  return logText(deps, await getRun(deps, principal, runId));
}

/** A run's log is read up to this: a CLI worker keeps as much of one (its head and tail). */
const LOG_BYTES = 5 * 1024 * 1024;

async function logText(deps: Pick<Deps, "blobs" | "podLogs">, run: Run): Promise<string> {
  if (run.log_inline) return run.output_tail ?? "";
  // A pod's log is its container's, as long as the pool's log group keeps it.
  if (run.container_id) return deps.podLogs.read(run.pool, run.container_id, LOG_BYTES);
  const body = await deps.blobs.get(blobKeys.log(run.task_uuid, run.run_id));
  return body ? Buffer.from(body).toString("utf8") : "";
}
