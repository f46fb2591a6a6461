import { poolConfig } from "./admission.ts";
import { actingTenant, canSee, type Principal, requireScope } from "./auth.ts";
import type { Deps } from "./deps.ts";
import { runNotFound } from "./errors.ts";
import { taskUuidOfRun } from "./identifiers.ts";
import { retryOnConflict } from "./optimistic.ts";
import { CommitConflict } from "./ports.ts";
import { type Run, type Tags, type Task, withMergedTags } from "./schemas.ts";
import type { RunStatus } from "./status.ts";
import { assertTransition } from "./status.ts";

/** A run the principal may see; anything else is a 404. */
export async function getRun(deps: Pick<Deps, "store">, principal: Principal, runId: string): Promise<Run> {
  requireScope(principal, "tasks:read");
  const taskUuid = taskUuidOfRun(runId);
  const run = taskUuid ? await deps.store.getRun(taskUuid, runId) : undefined;
  if (!run || !canSee(principal, run.tenant)) throw runNotFound(runId);
  return run;
}

export interface ListRunsQuery {
  task_id?: string;
  status?: RunStatus;
  size: number;
  cursor?: string;
  tenant?: string;
}

export async function listRuns(deps: Pick<Deps, "store">, principal: Principal, query: ListRunsQuery) {
  requireScope(principal, "tasks:read");
  let tenant = actingTenant(principal, query.tenant);
  if (query.task_id && principal.kind === "admin") {
    // The admin lists any task's runs: take the tenant from the task itself.
    tenant = (await deps.store.getTask(query.task_id))?.tenant ?? tenant;
  }
  const page = await deps.store.listRuns({
    tenant,
    taskUuid: query.task_id,
    status: query.status,
    size: query.size,
    cursor: query.cursor,
  });
  return { total: page.total, instances: page.items, next_cursor: page.nextCursor ?? null };
}

export async function mergeRunTags(
  deps: Deps,
  principal: Principal,
  runId: string,
  tags: Tags,
): Promise<Run> {
  requireScope(principal, "tasks:write");
  return retryOnConflict(async () => {
    const run = await getRun(deps, principal, runId);
    const next = withMergedTags(run, tags, deps.clock.now());
    await deps.store.commit({ runs: [{ next, expectVersion: run.version }] });
    return next;
  });
}

export type ClaimOutcome = { claimed: true; task: Task; run: Run } | { claimed: false; reason: string };

/**
 * A worker takes a dispatched run: task and run move to `running` together, with a lease. A message
 * for a run that is no longer dispatched (a duplicate, or canceled meanwhile) is stale: the worker
 * deletes it and runs nothing.
 */
export async function claimRun(
  deps: Pick<Deps, "store" | "clock" | "config">,
  message: { task_uuid: string; run_id: string },
  workerId: string,
): Promise<ClaimOutcome> {
  const [task, run] = await Promise.all([
    deps.store.getTask(message.task_uuid),
    deps.store.getRun(message.task_uuid, message.run_id),
  ]);
  if (!task || !run) return { claimed: false, reason: "unknown task or run" };
  if (task.run_id !== run.run_id || task.status !== "dispatched" || run.status !== "dispatched") {
    return { claimed: false, reason: `stale: task is ${task.status}, run is ${run.status}` };
  }
  assertTransition(task.status, "running");
  const now = deps.clock.now();
  const iso = now.toISOString();
  const leaseSeconds = poolConfig(deps, task.pool).lease_seconds;
  const nextTask: Task = {
    ...task,
    version: task.version + 1,
    status: "running",
    start_time: task.start_time ?? iso,
    update_time: iso,
    due_time: undefined,
  };
  const nextRun: Run = {
    ...run,
    version: run.version + 1,
    status: "running",
    worker: workerId,
    start_time: iso,
    update_time: iso,
    lease_expires_at: new Date(now.getTime() + leaseSeconds * 1000).toISOString(),
  };
  try {
    await deps.store.commit({
      tasks: [{ next: nextTask, expectVersion: task.version }],
      runs: [{ next: nextRun, expectVersion: run.version }],
    });
  } catch (err) {
    if (err instanceof CommitConflict) return { claimed: false, reason: "stale: changed while claiming" };
    throw err;
  }
  return { claimed: true, task: nextTask, run: nextRun };
}
