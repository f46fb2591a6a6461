import { admit } from "./admission.ts";
import { commitChange } from "./commit.ts";
import type { Deps } from "./deps.ts";
import { runIdFor } from "./identifiers.ts";
import { CommitConflict } from "./ports.ts";
import { isRecurring, type Run, type Task } from "./records.ts";
import { isExhausted, nextFireTime, type Recurrence } from "./recurrence.ts";
import { assertTransition } from "./status.ts";

/** The recurrence of a task, or undefined for a one-shot task. */
export function recurrenceOf(task: Task): Recurrence | undefined {
  if (!isRecurring(task)) return undefined;
  return {
    schedule: task.schedule,
    interval: task.interval,
    timezone: task.timezone ?? "UTC",
    valid_time_range: task.valid_time_range,
    end_time: task.schedule_end_time,
    times: task.times,
  };
}

/** Interval series start at the task's `scheduled_at`, else at its creation. */
export const anchorOf = (task: Task) => new Date(task.scheduled_at ?? task.create_time);

/** The occurrence after `slot` (undefined when the schedule has ended), honouring a pending reorder. */
export function followingFireTime(task: Task, slot: Date, firedCount: number): string | undefined {
  const recurrence = recurrenceOf(task) as Recurrence;
  if (isExhausted(recurrence, firedCount)) return undefined;
  const after =
    task.reorder_slot && Date.parse(task.reorder_slot) > slot.getTime() ? new Date(task.reorder_slot) : slot;
  return nextFireTime(recurrence, after, anchorOf(task))?.toISOString();
}

/** An occurrence is in progress: queued, dispatched, running, or waiting for a retry. */
const occurrenceInProgress = (task: Task) =>
  task.status === "queued" ||
  task.status === "dispatched" ||
  task.status === "running" ||
  (task.status === "scheduled" && task.due_time !== undefined);

/**
 * The tick found a recurring task's next occurrence due. If nothing is in progress, the occurrence starts:
 * the task is queued as round `occurrence + 1`, with fresh attempts. Otherwise `overlap` decides: `skip`
 * records a skipped run and moves on, `queue` keeps the one occurrence waiting until the current one ends.
 * Every fire is a conditional write on the task's version: overlapping ticks cannot fire it twice.
 */
export async function fireOccurrence(deps: Deps, task: Task): Promise<boolean> {
  const slot = new Date(task.next_run_time as string);
  const now = deps.clock.now();
  const iso = now.toISOString();
  // The schedule moves on from now: slots missed while the tick was late or down are not made up for,
  // in a burst or by falling behind.
  const nextAfter = now > slot ? now : slot;
  const firedCount = (task.fired_count ?? 0) + 1;
  const base = { ...task, version: task.version + 1, update_time: iso, reorder_slot: undefined };
  try {
    if (!occurrenceInProgress(task)) {
      assertTransition(task.status, "queued");
      const next: Task = {
        ...base,
        status: "queued",
        occurrence: firedCount,
        fired_count: firedCount,
        attempt: 0,
        rate_limit_retries: 0,
        ready_time: slot.toISOString(),
        last_run_time: slot.toISOString(),
        next_run_time: followingFireTime(task, nextAfter, firedCount),
        due_time: undefined,
      };
      await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task });
      await admit(deps, task.pool, [next]);
      return true;
    }
    if ((task.overlap ?? "skip") === "queue") {
      const next = { ...base, occurrence_waiting: true };
      await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task });
      return true;
    }
    // Skip: recorded as a run.
    const runNumber = (task.run_count ?? 0) + 1;
    const skipped: Run = {
      run_id: runIdFor(task.uuid, runNumber),
      version: 1,
      task_uuid: task.uuid,
      tenant: task.tenant,
      pool: task.pool,
      attempt: 0,
      occurrence: firedCount,
      status: "skipped",
      tags: {},
      create_time: iso,
      update_time: iso,
      end_time: iso,
      error: `skipped: occurrence ${task.occurrence} was still ${task.status}`,
    };
    const next: Task = {
      ...base,
      run_count: runNumber,
      fired_count: firedCount,
      next_run_time: followingFireTime(task, nextAfter, firedCount),
    };
    await commitChange(
      deps,
      { tasks: [{ next, expectVersion: task.version }], runs: [{ next: skipped }] },
      { task },
    );
    return true;
  } catch (err) {
    if (err instanceof CommitConflict) return false;
    throw err;
  }
}
