import { ConflictError } from "./errors.ts";

export const TASK_STATUSES = [
  "scheduled",
  "queued",
  "dispatched",
  "running",
  "succeeded",
  "failed",
  "canceled",
  "paused",
  "completed",
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const RUN_STATUSES = [
  "dispatched",
  "running",
  "succeeded",
  "failed",
  "canceled",
  "lost",
  "skipped",
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** The task state machine: the statuses each status may move to. */
const TASK_TRANSITIONS: Record<TaskStatus, readonly TaskStatus[]> = {
  // Scheduled and queued tasks fail without a run when their pool is no longer configured.
  scheduled: ["queued", "canceled", "paused", "failed"],
  queued: ["dispatched", "canceled", "paused", "failed"],
  // A dispatched or running task goes back to scheduled (retry) or queued (released by a draining worker).
  dispatched: ["running", "queued", "scheduled", "failed", "canceled", "paused"],
  // A paused task's running occurrence may finish; it then stays paused instead of going on.
  running: ["succeeded", "failed", "canceled", "scheduled", "queued", "completed", "paused"],
  paused: ["queued", "scheduled", "canceled"],
  succeeded: [],
  failed: [],
  canceled: [],
  completed: [],
};

/** Statuses in which a task holds a slot of its pool (and of its concurrency key). */
export const ACTIVE_STATUSES: readonly TaskStatus[] = ["dispatched", "running"];

export const TERMINAL_STATUSES: readonly TaskStatus[] = TASK_STATUSES.filter(
  (s) => TASK_TRANSITIONS[s].length === 0,
);

/**
 * The one gate for every task transition: a 409 when the state machine has no move from `from` to `to`.
 * Callers then write the new record on the condition that the version they read is still current.
 */
export function assertTransition(from: TaskStatus, to: TaskStatus): void {
  if (!TASK_TRANSITIONS[from].includes(to)) {
    throw new ConflictError(`status: cannot go from ${from} to ${to}`);
  }
}
