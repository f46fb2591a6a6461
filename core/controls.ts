import { admit, poolConfig } from "./admission.ts";
import { actingTenant, limitsOf, type Principal, requireScope } from "./auth.ts";
import { commitChange } from "./commit.ts";
import type { Deps } from "./deps.ts";
import { ConflictError } from "./errors.ts";
import { retryOnConflict } from "./optimistic.ts";
import { PAUSED_INDEFINITELY } from "./ports.ts";
import { poolStatus } from "./queues.ts";
import type { Task } from "./records.ts";
import { resumeFireTime, shiftFireTime } from "./recurrence.ts";
import { anchorOf, recurrenceOf } from "./recurring.ts";
import { assertTransition, TASK_STATUSES, type TaskStatus } from "./status.ts";
import { visibleTask } from "./tasks.ts";

/** A pool paused by hand stays paused until it is resumed. */

/** Writes the next version of a task the principal may touch, re-reading on a lost race. */
async function changeTask(
  deps: Deps,
  principal: Principal,
  uuid: string,
  change: (task: Task, now: Date) => Task,
) {
  requireScope(principal, "tasks:write");
  return retryOnConflict(async () => {
    const task = await visibleTask(deps, principal, uuid);
    const now = deps.clock.now();
    const next = { ...change(task, now), version: task.version + 1, update_time: now.toISOString() };
    await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task });
    return next;
  });
}

/**
 * Pause: nothing new fires or is admitted. A waiting task becomes `paused`; a dispatched or running one
 * keeps going, and stops where it would have gone on (retry, next occurrence) when its run ends.
 */
export function pauseTask(deps: Deps, principal: Principal, uuid: string): Promise<Task> {
  return changeTask(deps, principal, uuid, (task, now) => {
    if (task.paused_at) throw new ConflictError(`status: task ${uuid} is already paused`);
    if (task.status === "dispatched" || task.status === "running")
      return { ...task, paused_at: now.toISOString() };
    assertTransition(task.status, "paused");
    return {
      ...task,
      status: "paused",
      paused_from: task.status as "scheduled" | "queued",
      paused_at: now.toISOString(),
    };
  });
}

/**
 * Resume: a recurring task continues from now, with at most one catch-up when occurrences were missed
 * (core/recurrence.ts resumeFireTime); other work goes back to where it was paused from.
 */
export async function resumeTask(deps: Deps, principal: Principal, uuid: string): Promise<Task> {
  const resumed = await changeTask(deps, principal, uuid, (task, now) => {
    if (!task.paused_at) throw new ConflictError(`status: task ${uuid} is not paused`);
    const unpaused = { ...task, paused_at: undefined, paused_from: undefined };
    if (task.status !== "paused") return unpaused; // its run is still going
    const to = task.paused_from ?? "queued";
    assertTransition(task.status, to);
    const recurrence = recurrenceOf(task);
    if (!recurrence || to === "queued" || task.due_time !== undefined) return { ...unpaused, status: to };
    const lastFire = task.last_run_time ? new Date(task.last_run_time) : undefined;
    const { at } = resumeFireTime(recurrence, lastFire, new Date(task.paused_at), now, anchorOf(task));
    if (!at)
      return { ...unpaused, status: "completed", next_run_time: undefined, end_time: now.toISOString() };
    return { ...unpaused, status: "scheduled", next_run_time: at.toISOString() };
  });
  if (resumed.status === "queued") await admit(deps, resumed.pool, [resumed]);
  return resumed;
}

/**
 * Reorder: moves the next occurrence (or a delayed start) by `offsetSeconds`; negative is earlier. The
 * cadence after it is unchanged. While an occurrence is dispatched or running it is a 409.
 */
export function reorderTask(
  deps: Deps,
  principal: Principal,
  uuid: string,
  offsetSeconds: number,
): Promise<Task> {
  return changeTask(deps, principal, uuid, (task) => {
    if (task.status === "dispatched" || task.status === "running") {
      throw new ConflictError(`status: task ${uuid} is ${task.status}; reorder it when the run has ended`);
    }
    if (!task.next_run_time) throw new ConflictError(`next_run_time: task ${uuid} has no next run to move`);
    const moved = shiftFireTime(new Date(task.next_run_time), offsetSeconds).toISOString();
    if (recurrenceOf(task)) {
      return { ...task, next_run_time: moved, reorder_slot: task.reorder_slot ?? task.next_run_time };
    }
    // A delayed one-shot task (or a retry): its start moves.
    return { ...task, next_run_time: moved, due_time: task.due_time === undefined ? undefined : moved };
  });
}

/** Pauses or resumes admission to a pool (admin). Running work is not touched. */
export async function setPoolPaused(deps: Deps, principal: Principal, name: string, paused: boolean) {
  requireScope(principal, "admin");
  poolConfig(deps, name);
  if (paused) await deps.counters.pausePool(name, PAUSED_INDEFINITELY);
  else {
    await deps.counters.resumePool(name);
    await admit(deps, name);
  }
  return poolStatus(deps, name);
}

/** The dispatcher switch: stopping pauses every pool, starting resumes them all. */
export async function setDispatcher(deps: Deps, principal: Principal, running: boolean) {
  requireScope(principal, "admin");
  for (const pool of deps.config.pools) await setPoolPaused(deps, principal, pool.name, !running);
  return dispatcherStatus(deps, principal);
}

/**
 * Whether any pool admits work, each pool's state, the acting tenant's task counts per status, its
 * queued-task counter against max_queued_tasks (what a submission is checked against), and a page of its
 * running tasks with their pool's account.
 */
export async function dispatcherStatus(
  deps: Deps,
  principal: Principal,
  query: { tenant?: string; size?: number; cursor?: string } = {},
) {
  requireScope(principal, "admin");
  const pools = await Promise.all(deps.config.pools.map((p) => poolStatus(deps, p.name)));
  const acting = actingTenant(principal, query.tenant);
  const [totals, queued, tenantRecord, running] = await Promise.all([
    Promise.all(
      TASK_STATUSES.map(async (status) => [
        status,
        (await deps.tasks.listTasks({ tenant: acting, status, size: 1 })).total,
      ]),
    ),
    deps.counters.queuedCount(acting),
    deps.tenants.getTenant(acting),
    deps.tasks.listTasks({ tenant: acting, status: "running", size: query.size ?? 20, cursor: query.cursor }),
  ]);
  return {
    running: pools.some((p) => !p.paused),
    pools,
    tenant: acting,
    counts: Object.fromEntries(totals) as Record<TaskStatus, number>,
    // A tenant without a record (the admin's own) has no quota.
    queued_quota: { queued, max_queued_tasks: tenantRecord ? limitsOf(tenantRecord).max_queued_tasks : null },
    running_tasks: {
      tasks: running.items.map((task) => ({
        uuid: task.uuid,
        pool: task.pool,
        account: deps.config.pools.find((p) => p.name === task.pool)?.account ?? null,
        started_at: task.start_time ?? null,
      })),
      next_cursor: running.nextCursor ?? null,
    },
  };
}
