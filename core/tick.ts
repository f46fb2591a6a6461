import {
  DISPATCH_CONFIRM_SECONDS,
  pumpAll,
  recheckBudget,
  recheckParked,
  refill,
  sendDispatch,
  slotOf,
} from "./admission.ts";
import { commitChange } from "./commit.ts";
import type { Deps } from "./deps.ts";
import { reclaimLease } from "./execution.ts";
import { heartbeat } from "./heartbeats.ts";
import { DUE_SHARDS } from "./names.ts";
import { reclaimPod } from "./pod-runs.ts";
import { stopPod } from "./pods.ts";
import { CommitConflict } from "./ports.ts";
import { dueAt, isRecurring, type Task } from "./records.ts";
import { fireOccurrence } from "./recurring.ts";
import { ACTIVE_STATUSES, assertTransition } from "./status.ts";
import { releaseHeldSlot } from "./tasks.ts";
import { reconcileAccounts } from "./tool-accounts.ts";

/** Due tasks read per page of a shard. */
const DUE_PAGE = 100;
/**
 * Due tasks of one shard handled at once. A tick's reach is shards × this × its budget over one task's
 * round trips (a few writes): about 16 × 8 × 40 s / 0.1 s ≈ 50,000 tasks on AWS.
 */
const SHARD_CONCURRENCY = 8;
/**
 * How long a tick reads due pages for: then it stops, and the next tick (a minute later on AWS) goes
 * on. A backlog of due tasks is worked through at the store's pace, not a fixed count per tick.
 */
const TICK_BUDGET_MS = 40_000;

export interface TickReport {
  started: number;
  fired: number;
  resent: number;
  reclaimed: number;
  admitted: number;
  /** Tasks waiting for their concurrency key found it free (their wake-up was missed). */
  woken: number;
  /** Tasks of a pool no longer configured, failed (they cannot run anywhere). */
  orphaned: number;
  /** Queued tasks moved off pools whose account is limited or disabled. */
  moved: number;
  /** Tasks whose handling failed this tick (logged); the next tick tries them again. */
  failed: number;
}

/**
 * One tick: starts due delayed tasks and retries, fires due occurrences of recurring tasks, re-sends
 * dispatches no worker confirmed, reclaims expired leases, looks at the CLI accounts (limits that lifted,
 * tasks to move off held ones), then pumps every pool. Safe to overlap with
 * another tick: each step is a conditional write on the task's version. A task or pool that fails is
 * logged and left for the next tick; it never stops the rest.
 */
export async function tick(deps: Deps): Promise<TickReport> {
  const now = deps.clock.now();
  const startedAt = performance.now();
  const stopAt = startedAt + TICK_BUDGET_MS;
  const report: TickReport = {
    started: 0,
    fired: 0,
    resent: 0,
    reclaimed: 0,
    admitted: 0,
    woken: 0,
    orphaned: 0,
    moved: 0,
    failed: 0,
  };
  const shards = Array.from({ length: DUE_SHARDS }, (_, shard) => shard);
  await Promise.all(shards.map((shard) => tickShard(deps, shard, now, stopAt, report)));
  report.moved = await reconcileAccounts(deps).catch((err: unknown) => {
    deps.log.error("tick: the accounts' look failed; the next tick tries again", { error: String(err) });
    return 0;
  });
  report.admitted = await pumpAll(deps);
  const took = Math.round(performance.now() - startedAt);
  await heartbeat(deps, "tick", { duration_ms: took, admitted: report.admitted, failed: report.failed });
  return report;
}

/** The due tasks of one shard, page after page, each handled once, until none is left or time is up. */
async function tickShard(deps: Deps, shard: number, now: Date, stopAt: number, report: TickReport) {
  const iso = now.toISOString();
  let after: Task | undefined;
  do {
    const page = await deps.tasks.dueTasks(shard, iso, DUE_PAGE, after);
    let next = 0;
    const lane = async () => {
      while (next < page.length) {
        const task = page[next++] as Task;
        await handleDue(deps, task, now, report).catch((err: unknown) => {
          report.failed++;
          deps.log.error("tick: a due task failed", {
            uuid: task.uuid,
            status: task.status,
            error: String(err),
          });
        });
      }
    };
    await Promise.all(Array.from({ length: SHARD_CONCURRENCY }, lane));
    after = page.length < DUE_PAGE ? undefined : page.at(-1);
  } while (after && performance.now() < stopAt);
}

/** One action per task per tick; whatever else is due is seen by the next tick. */
async function handleDue(deps: Deps, task: Task, now: Date, report: TickReport): Promise<void> {
  const iso = now.toISOString();
  if (task.holds_slot) {
    // Canceled while running, and its worker never said the job was gone: the lease has run out.
    if ((task.due_time ?? "") > iso) return;
    await stopPod(deps, task, "canceled, and its deadline passed");
    if (await releaseHeldSlot(deps, task.uuid, task.run_id as string)) report.reclaimed++;
    return;
  }
  if (!deps.config.pools.some((p) => p.name === task.pool)) {
    if (await failOrphan(deps, task, now)) report.orphaned++;
    return;
  }
  if (task.due_time !== undefined && task.due_time <= iso) {
    if (task.status === "queued" && task.key_parked && (await recheckParked(deps, task))) report.woken++;
    if (task.status === "queued" && task.budget_parked && (await recheckBudget(deps, task))) report.woken++;
    if (task.status === "scheduled" && (await startDueTask(deps, task))) report.started++;
    if (task.status === "dispatched" && (await resendDispatch(deps, task, now))) report.resent++;
    if (task.status === "running" && (await reclaimRun(deps, task))) report.reclaimed++;
  } else if (isRecurring(task) && dueAt(task) === task.next_run_time && (await fireOccurrence(deps, task))) {
    report.fired++;
  }
}

/** A running task past its lease: a CLI's worker stopped heartbeating, or a pod ran past its deadline. */
const reclaimRun = (deps: Deps, task: Task) =>
  task.tool === "container" ? reclaimPod(deps, task) : reclaimLease(deps, task);

/** A task whose pool is no longer configured cannot run: it fails, and gives back any slot it held. */
async function failOrphan(deps: Deps, task: Task, now: Date): Promise<boolean> {
  assertTransition(task.status, "failed");
  const iso = now.toISOString();
  const error = `pool ${task.pool} is not in the configuration`;
  const holdsSlot = ACTIVE_STATUSES.includes(task.status);
  const run = holdsSlot && task.run_id ? await deps.tasks.getRun(task.uuid, task.run_id) : undefined;
  const next: Task = {
    ...task,
    version: task.version + 1,
    status: "failed",
    error_message: error,
    end_time: iso,
    update_time: iso,
    lease_expires_at: undefined,
    due_time: undefined,
  };
  const lost = run && {
    ...run,
    version: run.version + 1,
    status: "lost" as const,
    error,
    end_time: iso,
    update_time: iso,
  };
  try {
    await commitChange(
      deps,
      {
        tasks: [{ next, expectVersion: task.version }],
        ...(run && lost && { runs: [{ next: lost, expectVersion: run.version }] }),
        ...(holdsSlot && { release: slotOf(task) }),
      },
      { task, run },
    );
  } catch (err) {
    if (err instanceof CommitConflict) return false;
    throw err;
  }
  if (holdsSlot) await refill(deps, slotOf(task));
  return true;
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
