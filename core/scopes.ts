/**
 * Concurrency scopes (the config's `concurrency_limits`): a cap on the tasks of a tool, or of a model,
 * that hold a slot at once over all pools. Admission takes a slot of each of a task's limited scopes in
 * the same transaction as its pool slot (refused as `scope_busy` at the limit); the task keeps the scopes
 * it took (Task.held_scopes) and its release gives back those, whatever the limits are by then.
 */
import type { SchedulerConfig } from "./config.ts";
import type { Task } from "./records.ts";

export interface ScopeClaim {
  scope: string;
  limit: number;
}

/** The scopes a task counts against: its tool's and, when it names one, its model's. */
export const scopesOfTask = (task: Pick<Task, "tool" | "model">): string[] => [
  `tool:${task.tool}`,
  ...(task.model === undefined ? [] : [`model:${task.model}`]),
];

/** The limited scopes a task takes a slot of when it is admitted, with their limits now. */
export function scopeClaimsOf(config: Pick<SchedulerConfig, "concurrency_limits">, task: Task): ScopeClaim[] {
  return scopesOfTask(task).flatMap((scope) => {
    const limit = config.concurrency_limits[scope];
    return limit === undefined ? [] : [{ scope, limit }];
  });
}
