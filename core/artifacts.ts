import type { Principal } from "./auth.ts";
import type { Deps } from "./deps.ts";
import { ERROR_CODES, NotFoundError, runNotFound } from "./errors.ts";
import { blobKeys } from "./identifiers.ts";
import type { Run } from "./records.ts";
import { getRun } from "./runs.ts";
import { getTask } from "./tasks.ts";

export interface TaskFile {
  path: string;
  is_input: boolean;
  size_bytes: number;
}

/** The task's input files and the output files its runs uploaded. */
export async function listTaskFiles(deps: Pick<Deps, "tasks" | "blobs">, principal: Principal, uuid: string) {
  const task = await getTask(deps, principal, uuid);
  const prefix = blobKeys.filesPrefix(task.uuid);
  const blobs = await deps.blobs.list(prefix);
  return blobs.map((blob): TaskFile => {
    const [kind, ...rest] = blob.key.slice(prefix.length).split("/");
    return { path: rest.join("/"), is_input: kind === "input", size_bytes: blob.size };
  });
}

/** One file's bytes: an output file if a run wrote one at that path, else the input file. */
export async function readTaskFile(
  deps: Pick<Deps, "tasks" | "blobs">,
  principal: Principal,
  uuid: string,
  path: string,
): Promise<Uint8Array> {
  const task = await getTask(deps, principal, uuid);
  const body =
    (await deps.blobs.get(blobKeys.output(task.uuid, path))) ??
    (await deps.blobs.get(blobKeys.input(task.uuid, path)));
  if (!body) throw new NotFoundError(ERROR_CODES.taskNotFound, `file ${path} of task ${uuid} not found`);
  return body;
}

/** A run's log text: the task's latest run, or the one named. Empty while the run has written none. */
export async function readTaskLog(
  deps: Pick<Deps, "tasks" | "blobs">,
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

export async function readRunLog(deps: Pick<Deps, "tasks" | "blobs">, principal: Principal, runId: string) {
  return logText(deps, await getRun(deps, principal, runId));
}

async function logText(deps: Pick<Deps, "blobs">, run: Run): Promise<string> {
  if (run.log_inline) return run.output_tail ?? "";
  const body = await deps.blobs.get(blobKeys.log(run.task_uuid, run.run_id));
  return body ? Buffer.from(body).toString("utf8") : "";
}
