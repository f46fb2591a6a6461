import { DISPATCH_CONFIRM_SECONDS, pumpAll, sendDispatch } from "./admission.ts";
import { commitChange } from "./commit.ts";
import type { Deps } from "./deps.ts";
import { reclaimLease } from "./execution.ts";
import { DUE_SHARDS } from "./names.ts";
import { CommitConflict } from "./ports.ts";
import { dueAt, isRecurring, type Task } from "./records.ts";
import { fireOccurrence } from "./recurring.ts";
import { assertTransition } from "./status.ts";

/** Due tasks read per shard per tick; the rest wait for the next tick. */
const DUE_BATCH = 100;

export interface TickReport {
  started: number;
  fired: number;
  resent: number;
  reclaimed: number;
  admitted: number;
}

/**
 * One tick: starts due delayed tasks and retries, fires due occurrences of recurring tasks, re-sends
 * dispatches no worker confirmed, reclaims expired leases, then pumps every pool. Safe to overlap with another tick: each step is a conditional write on the task's version.
 */
export async function tick(deps: Deps): Promise<TickReport> {
  const now = deps.clock.now();
  const shards = Array.from({ length: DUE_SHARDS }, (_, shard) => shard);
  const due = (
    await Promise.all(shards.map((s) => deps.tasks.dueTasks(s, now.toISOString(), DUE_BATCH)))
  ).flat();
  const report: TickReport = { started: 0, fired: 0, resent: 0, reclaimed: 0, admitted: 0 };
  const iso = now.toISOString();
  for (const task of due) {
    // One action per task per tick; whatever else is due is seen by the next tick.
    if (task.due_time !== undefined && task.due_time <= iso) {
      if (task.status === "scheduled" && (await startDueTask(deps, task))) report.started++;
      if (task.status === "dispatched" && (await resendDispatch(deps, task, now))) report.resent++;
      if (task.status === "running" && (await reclaimLease(deps, task))) report.reclaimed++;
    } else if (
      isRecurring(task) &&
      dueAt(task) === task.next_run_time &&
      (await fireOccurrence(deps, task))
    ) {
      report.fired++;
    }
  }
  report.admitted = await pumpAll(deps);
  return report;
}

/** A delayed task or a retry whose time has come becomes queued, ready from its due time. */
async function startDueTask(deps: Deps, task: Task): Promise<boolean> {
  assertTransition(task.status, "queued");
  const next: Task = {
    ...task,
    version: task.version + 1,
    status: "queued",
    ready_time: task.due_time,
    due_time: undefined,
    // A recurring task keeps its next occurrence.
    next_run_time: isRecurring(task) ? task.next_run_time : undefined,
    update_time: deps.clock.now().toISOString(),
  };
  return commitQuietly(deps, next, task);
}

/** The worker never confirmed the dispatch: send it again (same dedup id) and look again later. */
async function resendDispatch(deps: Deps, task: Task, now: Date): Promise<boolean> {
  await sendDispatch(deps, task);
  const next: Task = {
    ...task,
    version: task.version + 1,
    due_time: new Date(now.getTime() + DISPATCH_CONFIRM_SECONDS * 1000).toISOString(),
  };
  return commitQuietly(deps, next, task);
}

/** Writes a tick's change; losing the race to another writer is fine, the other one won. */
async function commitQuietly(deps: Deps, next: Task, task: Task): Promise<boolean> {
  try {
    await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task });
    return true;
  } catch (err) {
    if (err instanceof CommitConflict) return false;
    throw err;
  }
}
