import { actingTenant, canSee, type Principal, requireScope } from "./auth.ts";
import { commitChange } from "./commit.ts";
import type { Deps } from "./deps.ts";
import { runNotFound } from "./errors.ts";
import type { Tags } from "./fields.ts";
import { taskUuidOfRun } from "./identifiers.ts";
import { retryOnConflict } from "./optimistic.ts";
import { type Run, withMergedTags } from "./records.ts";
import type { RunStatus } from "./status.ts";

/** Reads a run (scope `tasks:read`) the principal may see; anything else is a 404. */
export async function getRun(deps: Pick<Deps, "tasks">, principal: Principal, runId: string): Promise<Run> {
  requireScope(principal, "tasks:read");
  return visibleRun(deps, principal, runId);
}

/** A run the principal may see, without a scope check (for use cases that check their own). */
async function visibleRun(deps: Pick<Deps, "tasks">, principal: Principal, runId: string): Promise<Run> {
  const taskUuid = taskUuidOfRun(runId);
  const run = taskUuid ? await deps.tasks.getRun(taskUuid, runId) : undefined;
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

export async function listRuns(deps: Pick<Deps, "tasks">, principal: Principal, query: ListRunsQuery) {
  requireScope(principal, "tasks:read");
  let tenant = actingTenant(principal, query.tenant);
  if (query.task_id && principal.kind === "admin") {
    // The admin lists any task's runs: take the tenant from the task itself.
    tenant = (await deps.tasks.getTask(query.task_id))?.tenant ?? tenant;
  }
  const page = await deps.tasks.listRuns({
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
    const run = await visibleRun(deps, principal, runId);
    const next = withMergedTags(run, tags, deps.clock.now());
    await commitChange(deps, { runs: [{ next, expectVersion: run.version }] }, { run });
    return next;
  });
}
