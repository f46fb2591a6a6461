/**
 * What a client sees of the pools and their queues: how full each pool is, how many tasks wait, the head
 * of a queue and a queued task's place in it. Tenant keys see every pool's aggregates, but only their own
 * tasks.
 */
import { poolConfig } from "./admission.ts";
import { canSee, type Principal, requireScope } from "./auth.ts";
import { nextDayStart } from "./budgets.ts";
import type { PoolConfig } from "./config.ts";
import type { Deps } from "./deps.ts";
import { calibrationOf, expectedWaitIn } from "./estimate.ts";
import { ACCOUNT_DISABLED_UNTIL, PAUSED_INDEFINITELY, type PoolState } from "./ports.ts";
import type { Task } from "./records.ts";
import { liveWorkers } from "./workers.ts";

/** A queue's head shows this many tasks; a task's place is counted up to this many ahead. */
const QUEUE_HEAD = 10;
const POSITION_CAP = 1000;

/** A pool's counters and pause, as the admission sees them. */
export async function poolStatus(deps: Pick<Deps, "counters" | "clock">, name: string) {
  return statusOf(deps, name, await deps.counters.poolState(name));
}

function statusOf(deps: Pick<Deps, "clock">, name: string, state: PoolState) {
  const now = deps.clock.now().toISOString();
  const paused = state.pausedUntil !== undefined && state.pausedUntil > now;
  return {
    name,
    active: state.active,
    queued: state.queued,
    paused,
    paused_until: paused ? (state.pausedUntil as string) : null,
  };
}

/** A pool as the v2 API shows it: `usage` is the share of its slots held, `tasks` the tasks holding one. */
async function poolView(deps: Pick<Deps, "counters" | "clock">, pool: PoolConfig) {
  const status = await poolStatus(deps, pool.name);
  return {
    name: pool.name,
    tool: pool.tool,
    account: pool.account ?? null,
    usage: Math.round((status.active / pool.max_concurrency) * 1000) / 1000,
    tasks: status.active,
    max_concurrency: pool.max_concurrency,
    paused: status.paused,
    paused_until: status.paused_until,
  };
}

export async function listPools(deps: Deps, principal: Principal) {
  requireScope(principal, "tasks:read");
  return Promise.all(deps.config.pools.map((pool) => poolView(deps, pool)));
}

/** One pool; `verbose` adds its configuration and the workers serving it. An unknown pool is a 404. */
export async function getPool(deps: Deps, principal: Principal, name: string, verbose: boolean) {
  requireScope(principal, "tasks:read");
  const pool = poolConfig(deps, name);
  const view = await poolView(deps, pool);
  if (!verbose) return view;
  const workers = (await liveWorkers(deps)).filter((w) => w.pool === name);
  const { name: _, tool: __, account: ___, ...config } = pool;
  return {
    ...view,
    config,
    workers: {
      count: workers.length,
      slots: workers.reduce((n, w) => n + w.slots, 0),
      running: workers.reduce((n, w) => n + w.running, 0),
    },
  };
}

type EstimateDeps = Pick<Deps, "counters" | "clock" | "random">;

/**
 * The expected wait, in seconds, of a task at `place` in a pool's queue (core/estimate.ts): null while the
 * pool is paused or has too few recent runs to tell.
 */
async function expectedWait(
  deps: EstimateDeps,
  pool: PoolConfig,
  place: { position: number; priority: number },
  state: PoolState,
) {
  const paused = statusOf(deps, pool.name, state).paused;
  const estimate = paused ? undefined : await expectedWaitIn(deps, pool, state, place);
  return { waiting_time_expect: estimate?.expect ?? null, waiting_time_error: estimate?.error ?? null };
}

/**
 * A pool's queue as the v2 API shows it: `size` is every task waiting or holding a slot, `waiting` the
 * queued ones, `running` those holding a slot (dispatched or running), and the expected wait of a task of
 * `priority` that joins it now, behind every queued one (those of a lower priority too: a safe side).
 */
async function queueView(deps: EstimateDeps, pool: PoolConfig, priority: number) {
  const state = await deps.counters.poolState(pool.name);
  return {
    name: pool.name,
    size: state.queued + state.active,
    waiting: state.queued,
    running: state.active,
    ...(await expectedWait(deps, pool, { position: state.queued + 1, priority }, state)),
  };
}

export async function listQueues(deps: Deps, principal: Principal, priority: number) {
  requireScope(principal, "tasks:read");
  return Promise.all(deps.config.pools.map((pool) => queueView(deps, pool, priority)));
}

/**
 * One pool's queue; `verbose` adds its head: the next tasks to be admitted, with their places, of those the
 * caller may see (another tenant's tasks take their places, unseen); and how good the pool's predicted
 * waits were, over its recent tasks that waited with a prediction (core/estimate.ts calibrationOf).
 */
export async function getQueue(
  deps: Deps,
  principal: Principal,
  name: string,
  { verbose, priority }: { verbose: boolean; priority: number },
) {
  requireScope(principal, "tasks:read");
  const pool = poolConfig(deps, name);
  const view = await queueView(deps, pool, priority);
  if (!verbose) return view;
  const [next, outcomes] = await Promise.all([
    deps.tasks.readyTasks(name, QUEUE_HEAD),
    deps.counters.waitOutcomes(name),
  ]);
  const head = next.flatMap((task, i) =>
    canSee(principal, task.tenant) ? [{ position: i + 1, uuid: task.uuid, priority: task.priority }] : [],
  );
  return { ...view, head, calibration: calibrationOf(outcomes) };
}

/** A queued task's place (1 is next) and expected wait in seconds (nulls without an estimate). */
export interface QueuePlace {
  position?: number;
  waiting_time_expect?: number | null;
  waiting_time_error?: number | null;
  waiting_reason?: "account_limited" | "account_disabled" | "pool_paused" | "budget";
  waiting_until?: string | null;
}

/**
 * A queued task's place in the admission order (1 for the next to be admitted) and its expected wait from
 * now. Nothing for a task that is not in its pool's queue (not queued, or waiting for its busy concurrency
 * key), or with 1,000 ahead of it. Only a nicety beside the task: a read that fails gives nothing (logged),
 * never a failed answer about a task that is there.
 */
export async function queuePlace(
  deps: Pick<Deps, "tasks" | "config" | "log"> & EstimateDeps,
  task: Task,
): Promise<QueuePlace> {
  if (task.status === "queued" && task.budget_parked) {
    return { waiting_reason: "budget", waiting_until: nextDayStart(deps.clock.now()) };
  }
  if (task.status !== "queued" || task.key_parked) return {};
  try {
    return await placeInQueue(deps, task);
  } catch (err) {
    deps.log.warn("no place or expected wait for a task", { uuid: task.uuid, error: String(err) });
    return {};
  }
}

async function placeInQueue(
  deps: Pick<Deps, "tasks" | "config"> & EstimateDeps,
  task: Task,
): Promise<QueuePlace> {
  const [ahead, state] = await Promise.all([
    deps.tasks.readyAhead(task, POSITION_CAP),
    deps.counters.poolState(task.pool),
  ]);
  const waiting = waitingReason(deps, state);
  if (ahead >= POSITION_CAP) return waiting;
  const position = ahead + 1;
  const place = { position, priority: task.priority };
  return { position, ...(await expectedWait(deps, poolConfig(deps, task.pool), place, state)), ...waiting };
}

/** Why a paused pool admits nothing, and until when (null: until an admin resumes it or its account). */
function waitingReason(
  deps: Pick<Deps, "clock">,
  state: PoolState,
): Pick<QueuePlace, "waiting_reason" | "waiting_until"> {
  const until = state.pausedUntil;
  if (until === undefined || until <= deps.clock.now().toISOString()) return {};
  if (until === PAUSED_INDEFINITELY) return { waiting_reason: "pool_paused", waiting_until: null };
  if (until === ACCOUNT_DISABLED_UNTIL) return { waiting_reason: "account_disabled", waiting_until: null };
  return { waiting_reason: "account_limited", waiting_until: until };
}
