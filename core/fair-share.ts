/**
 * Fair share between tenants within a pool. At equal priority the ready queue serves tasks by round,
 * then by ready time: a task entering the queue takes the round after its tenant's tasks already queued
 * there, counted from the round the pool last served at its priority, in steps of 1/weight. So a tenant's
 * flood cannot starve another's trickle: each tenant's next task is in the round being served, and the
 * rounds go to tenants in turn (a tenant of weight 2 gets two tasks a round). Priority still comes first,
 * and a tenant's own tasks keep their order (a later one never takes a lower round than an earlier one
 * still queued). Pools with priority aging order by virtual ready time instead.
 */

import type { Deps } from "./deps.ts";
import type { Task } from "./records.ts";
import { tenantSettingsOf } from "./tenant-settings.ts";

/** The task as it enters its pool's queue: with its fair round (none in a pool with priority aging). */
export async function withFairRound(
  deps: Pick<Deps, "counters" | "tenants" | "clock">,
  task: Task,
): Promise<Task> {
  if (task.aging_seconds !== undefined) return task;
  const [{ round, queued }, settings] = await Promise.all([
    deps.counters.fairState(task.pool, task.tenant, task.priority),
    tenantSettingsOf(deps, task.tenant),
  ]);
  return { ...task, fair_round: round + (queued + 1) / (settings.weight ?? 1) };
}
