import { createHash } from "node:crypto";
import * as z from "zod";
import { BUDGET_RECHECK_SECONDS, budgetClaims, nextDayStart, withBudgetHold } from "./budgets.ts";
import { commitChange } from "./commit.ts";
import type { PoolConfig } from "./config.ts";
import type { Deps } from "./deps.ts";
import { InsufficientResourcesError, poolNotFound, ValidationError } from "./errors.ts";
import { expectedWaitIn } from "./estimate.ts";
import type { PoolTool } from "./fields.ts";
import { runIdFor } from "./identifiers.ts";
import { type PolicySubject, policyRefusal } from "./policies.ts";
import {
  type BudgetClaim,
  CommitConflict,
  type CommitConflictReason,
  HELD_SINCE_POOL_LIMIT,
  type PoolState,
  type RecordWrite,
  type SlotClaim,
  type SlotRelease,
  type StateChange,
} from "./ports.ts";
import {
  CONCURRENCY_KEY_LIMIT,
  type PoolRouting,
  type Run,
  readyKeyOf,
  scopedConcurrencyKey,
  type Task,
} from "./records.ts";
import { scopeClaimsOf, scopesOfTask } from "./scopes.ts";
import { assertTransition } from "./status.ts";

/** A dispatch whose worker has not confirmed it by then is re-sent by the tick (same dedup id). */
export const DISPATCH_CONFIRM_SECONDS = 60;

export interface QueueMessageBody {
  run_id: string;
  task_uuid: string;
  pool: string;
  /**
   * The task and run as admission wrote them, so that the worker's claim need not read them (the claim's
   * conditional write proves them current). Absent from a re-send, and from a task too big to carry.
   */
  snapshot?: { task: Task; run: Run };
}

/** A dispatch larger than this carries ids only (SQS takes 256 KB a message, attributes included). */
const SNAPSHOT_MAX_BYTES = 200_000;

/**
 * The dispatch message as it must arrive. The snapshot's records are checked only for what the claim
 * relies on (ids and versions): its conditional write proves them current, else the claim reads them.
 */
const dispatchMessage = z.object({
  run_id: z.string().min(1),
  task_uuid: z.string().min(1),
  pool: z.string().min(1),
  snapshot: z
    .object({
      task: z.looseObject({ uuid: z.string(), version: z.number() }),
      run: z.looseObject({ run_id: z.string(), version: z.number() }),
    })
    .optional(),
});

/** The dispatch message of a task's run: ids, and the records as written when they fit. */
export function encodeDispatch(task: Task, run?: Run): string {
  const ids: QueueMessageBody = { run_id: task.run_id as string, task_uuid: task.uuid, pool: task.pool };
  const withSnapshot = run && JSON.stringify({ ...ids, snapshot: { task, run } });
  return withSnapshot && Buffer.byteLength(withSnapshot) <= SNAPSHOT_MAX_BYTES
    ? withSnapshot
    : JSON.stringify(ids);
}

/** A dispatch message read back; undefined when it is not one (not JSON, or missing its ids). */
export function decodeDispatch(body: string): QueueMessageBody | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  const parsed = dispatchMessage.safeParse(value);
  return parsed.success ? (parsed.data as QueueMessageBody) : undefined;
}

export function poolConfig(deps: Pick<Deps, "config">, name: string): PoolConfig {
  const pool = deps.config.pools.find((p) => p.name === name);
  if (!pool) throw poolNotFound(name);
  return pool;
}

/** The pool slot (and concurrency-key slot) a dispatched or running task holds. */
export const slotOf = (task: Task): SlotRelease => ({
  pool: task.pool,
  concurrencyKey: scopedConcurrencyKey(task),
  heldSince: task.dispatch_time,
  ...(task.held_scopes?.length && { scopes: task.held_scopes }),
});

/**
 * The SQS message group: the concurrency key (hashed, because group ids allow only 128 ASCII
 * characters and keys are free text), or the run id when there is none.
 */
export function messageGroupId(task: Task, runId: string): string {
  const key = scopedConcurrencyKey(task);
  return key === undefined ? runId : createHash("sha256").update(key).digest("hex");
}

const isPaused = (state: PoolState, now: string) =>
  state.pausedUntil !== undefined && state.pausedUntil > now;

/** The pool chosen for a task that names no one pool, and how (absent: it was the only eligible one). */
export interface PoolChoice {
  pool: PoolConfig;
  routedBy?: NonNullable<Task["routed_by"]>;
  /** False when every eligible pool was paused (a usage limit, or an admin's pause); absent when not read. */
  open?: boolean;
}

/** Whether a pool's name matches a routing glob (`*`: any run of name characters). */
const matchesGlob = (glob: string | undefined, name: string) =>
  glob === undefined || new RegExp(`^${glob.replaceAll("*", "[a-z0-9-]*")}$`).test(name);

/** The pools a routing allows: by name glob and account (`any` or absent: every account), and tool. */
export function routablePools(
  deps: Pick<Deps, "config">,
  tool: PoolTool | undefined,
  routing: PoolRouting,
): PoolConfig[] {
  const { pools, account } = routing;
  const allowed = deps.config.pools.filter(
    (p) =>
      matchesGlob(pools, p.name) &&
      (account === undefined || account === "any" || p.account === account) &&
      (tool === undefined || p.tool === tool),
  );
  const field = pools !== undefined ? "pool" : account !== undefined ? "account" : "tool";
  const asked = [pools && `pool ${pools}`, account && account !== "any" && `account ${account}`, tool]
    .filter(Boolean)
    .join(", ");
  if (allowed.length === 0) throw new InsufficientResourcesError(`${field}: no pool runs ${asked}`);
  const tools = new Set(allowed.map((p) => p.tool));
  if (tools.size > 1) {
    throw new ValidationError("tool", `the pools of ${asked} run ${[...tools].join(", ")}: name the tool`);
  }
  return allowed;
}

/**
 * For a task that names no one pool: of the pools its routing allows whose policies accept it
 * (core/policies.ts), the one where a task of its priority joining now would start soonest, by the
 * expected waits (core/estimate.ts) when every such pool has the history to tell, else the one with the
 * smallest share of its slots held. A paused pool (its account limited, say) is chosen only if all are:
 * then the one that opens first. With one eligible pool, nothing is read.
 */
export async function choosePool(
  deps: Pick<Deps, "config" | "counters" | "clock" | "random">,
  tool: PoolTool | undefined,
  subject: PolicySubject,
  routing: PoolRouting = {},
): Promise<PoolChoice> {
  const allowed = routablePools(deps, tool, routing);
  const eligible = allowed.filter((p) => !policyRefusal(p, subject));
  // Refused by every pool allowed: the first one's refusal says why.
  if (eligible.length === 0) throw policyRefusal(allowed[0] as PoolConfig, subject);
  if (eligible.length === 1) return { pool: eligible[0] as PoolConfig };
  const now = deps.clock.now().toISOString();
  const views = await Promise.all(
    eligible.map(async (pool) => {
      const state = await deps.counters.poolState(pool.name);
      if (isPaused(state, now)) return { pausedUntil: state.pausedUntil as string };
      const place = { position: state.queued + 1, priority: subject.priority };
      const estimate = await expectedWaitIn(deps, pool, state, place);
      return { load: state.active / pool.max_concurrency, wait: estimate?.expect };
    }),
  );
  const open = views.flatMap((view, i) =>
    "load" in view ? [{ ...view, pool: eligible[i] as PoolConfig }] : [],
  );
  if (open.length === 0) {
    const until = (i: number) => (views[i] as { pausedUntil: string }).pausedUntil;
    let first = 0;
    for (let i = 1; i < eligible.length; i++) if (until(i) < until(first)) first = i;
    return { pool: eligible[first] as PoolConfig, open: false };
  }
  const byWait = open.every((v) => v.wait !== undefined);
  const cost = (v: (typeof open)[number]) => (byWait ? v.wait : v.load) ?? 0;
  const best = open.reduce((a, b) => (cost(b) < cost(a) ? b : a));
  return { pool: best.pool, routedBy: byWait ? "expected_wait" : "load", open: true };
}

/** Ready tasks read per page while admitting. */
const ADMIT_PAGE = 10;
/**
 * Races an admission pass loses (another admitter took the candidate first) before it stops: the
 * admitters that won are at work in this pool, and the tick pumps every pool in any case.
 */
const ADMIT_LOST_RACES = 2;
/**
 * A task waiting for its key is looked at by the tick this often, in case no run's end woke it (a wake-up
 * that failed, or an index that lagged): a missed wake-up costs at most a minute, one write a minute each.
 */
const KEY_RECHECK_SECONDS = 60;
/**
 * Tasks a pass goes past untried, because a concurrency scope of theirs (a model's) is full,
 * before it stops: the tick and the next release of such a scope go on.
 */
const SCOPE_SKIPS = 100;

/**
 * Admits queued tasks of a pool while it has capacity: highest priority first, then the oldest.
 * Each admission is one transaction (task → dispatched, new run, pool slot, concurrency-key slot),
 * followed by the send to the pool's FIFO queue. If the process dies between the two, the task's
 * due_time makes the tick re-send; the dedup id (= run id) makes that safe.
 *
 * A task whose key is busy leaves the pool's ready queue to wait in its key's (it is parked), so the pass
 * goes on past it, and no later pass reads it again until a run of its key ends. A free slot therefore
 * never waits behind tasks that cannot use it.
 *
 * The pool counter is not read first: the transaction's condition refuses a full or paused pool, and
 * that refusal ends the pass. `fresh` are tasks just queued by the caller, which the ready index (eventually
 * consistent on AWS) may not show yet. Returns the tasks admitted, as stored.
 */
export async function admit(deps: Deps, poolName: string, fresh: Task[] = []): Promise<Task[]> {
  const pool = poolConfig(deps, poolName);
  const admitted: Task[] = [];
  const tried = new Set<string>();
  const busyKeys = new Set<string>();
  const fullScopes = new Set<string>();
  const spentTenants = new Set<string>();
  let [lostRaces, scopeSkips] = [0, 0];
  let waiting = fresh;
  let after: Task | undefined;
  for (;;) {
    const page = await deps.tasks.readyTasks(pool.name, ADMIT_PAGE, after);
    const last = page.length < ADMIT_PAGE ? undefined : page.at(-1);
    // A fresh task joins the page it sorts into, so that it never passes a task ahead of it.
    const joining = waiting.filter((t) => !last || readyOrder(t, last) <= 0);
    waiting = waiting.filter((t) => !joining.includes(t));
    for (const task of [...page, ...joining].sort(readyOrder)) {
      if (tried.has(task.uuid)) continue;
      tried.add(task.uuid);
      if (scopesOfTask(task).some((scope) => fullScopes.has(scope))) {
        if (++scopeSkips >= SCOPE_SKIPS) return admitted;
        continue;
      }
      // A tenant found over its budget in this pass stays so: its other tasks wait at once.
      if (spentTenants.has(task.tenant)) {
        await parkForBudget(deps, task);
        continue;
      }
      const key = scopedConcurrencyKey(task);
      // A key found busy in this pass stays busy until a run of it ends: its other tasks wait at once.
      const known = key !== undefined && busyKeys.has(key) && (await park(deps, task));
      const outcome = known && known !== "key_free" ? known : await admitOrPark(deps, pool, task);
      if (outcome === "parked") busyKeys.add(key as string);
      if (typeof outcome !== "string") admitted.push(outcome);
      else if (outcome === "pool_closed" || outcome === "pool_budget_spent") return admitted;
      else if (outcome === "budget_spent") {
        spentTenants.add(task.tenant);
        await parkForBudget(deps, task);
      } else if (outcome === "scope_busy") {
        const full = await fullScopesOf(deps, task);
        // Every task of the pool is of its tool: none can go now.
        if (full.includes(`tool:${pool.tool}`)) return admitted;
        for (const scope of full) fullScopes.add(scope);
        if (full.length === 0 && ++lostRaces >= ADMIT_LOST_RACES) return admitted;
      } else if (outcome !== "parked" && ++lostRaces >= ADMIT_LOST_RACES) return admitted;
    }
    if (!last) return admitted;
    after = last;
  }
}

/** Of a task's limited concurrency scopes, those at their limit now. */
async function fullScopesOf(deps: Deps, task: Task): Promise<string[]> {
  const claims = scopeClaimsOf(deps.config, task);
  const states = await Promise.all(claims.map(({ scope }) => deps.counters.scopeState(scope)));
  return claims.filter((claim, i) => (states[i]?.active ?? 0) >= claim.limit).map(({ scope }) => scope);
}

/** Admits the task, or parks it when its key is busy; a key freed in between is tried once more. */
async function admitOrPark(deps: Deps, pool: PoolConfig, task: Task) {
  for (let tries = 0; tries < 2; tries++) {
    const outcome = await admitOne(deps, pool, task);
    if (outcome !== "key_busy") return outcome;
    const parked = await park(deps, task);
    if (parked !== "key_free") return parked;
  }
  return "key_busy" as const;
}

/** Moves a queued task whose key is busy to its key's wait; the tick looks again now and then. */
async function park(deps: Deps, task: Task): Promise<"parked" | "key_free" | CommitConflictReason> {
  const now = deps.clock.now();
  const next: Task = {
    ...task,
    version: task.version + 1,
    key_parked: true,
    due_time: new Date(now.getTime() + KEY_RECHECK_SECONDS * 1000).toISOString(),
  };
  try {
    await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task });
    return "parked";
  } catch (err) {
    if (err instanceof CommitConflict) return err.reason;
    throw err;
  }
}

/**
 * Moves a queued task whose tenant's daily budget is spent out of its pool's ready queue; the tick looks
 * again every few minutes (settles may leave room) and at the day's turn.
 */
async function parkForBudget(deps: Deps, task: Task): Promise<void> {
  const now = deps.clock.now();
  const recheck = Math.min(now.getTime() + BUDGET_RECHECK_SECONDS * 1000, Date.parse(nextDayStart(now)));
  const next: Task = {
    ...task,
    version: task.version + 1,
    budget_parked: true,
    due_time: new Date(recheck).toISOString(),
  };
  await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task }).catch(
    (err: unknown) => {
      if (!(err instanceof CommitConflict)) throw err;
    },
  );
}

/** The tick's look at a task parked for its budget: back in its pool's queue, and admitted if there is room. */
export async function recheckBudget(deps: Deps, task: Task): Promise<boolean> {
  const next: Task = { ...task, version: task.version + 1, budget_parked: undefined, due_time: undefined };
  try {
    await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task });
  } catch (err) {
    if (err instanceof CommitConflict) return false;
    throw err;
  }
  await admit(deps, next.pool, [next]);
  return true;
}

/** A parked task back in its pool's ready queue, at its old place (its priority and ready time). */
async function unpark(deps: Deps, task: Task): Promise<Task | undefined> {
  const next: Task = { ...task, version: task.version + 1, key_parked: undefined, due_time: undefined };
  try {
    await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task });
    return next;
  } catch (err) {
    if (err instanceof CommitConflict) return undefined;
    throw err;
  }
}

/** The key's next waiting task rejoins its pool's ready queue if the key is free; returns it. */
async function wakeKey(deps: Deps, key: string): Promise<Task | undefined> {
  const state = await deps.counters.keyState(key);
  if (state.waiting <= 0 || state.active >= CONCURRENCY_KEY_LIMIT) return undefined;
  // The wait is read from an index: a task parked a moment ago may not show yet; the tick's look finds it.
  const [next] = await deps.tasks.keyWaitingTasks(key, 1);
  return next && unpark(deps, next);
}

/**
 * After a run gave its slots back: the next task waiting for its key (if any) rejoins its pool's ready
 * queue, and the pools admit: the slot's, the woken task's, and, when the slot held concurrency scopes,
 * the other pools of its tool, whose tasks may have waited for those. Returns how many tasks the slot's
 * pool admitted. Never throws: the tick does whatever this misses.
 */
export async function refill(deps: Deps, slot: SlotRelease): Promise<number> {
  try {
    const key = slot.concurrencyKey;
    // A failed wake-up is tried once more at once; the tick's look is the last resort.
    const woken = key === undefined ? undefined : await wakeKey(deps, key).catch(() => wakeKey(deps, key));
    const admitted = await admit(deps, slot.pool, woken?.pool === slot.pool ? [woken] : []);
    if (woken && woken.pool !== slot.pool) await admit(deps, woken.pool, [woken]);
    if (slot.scopes?.length) {
      const { tool } = poolConfig(deps, slot.pool);
      for (const other of deps.config.pools.filter((p) => p.tool === tool && p.name !== slot.pool)) {
        await admit(deps, other.name);
      }
    }
    return admitted.length;
  } catch (err) {
    deps.log.warn("after slots were freed: admission failed; the tick admits", { error: String(err) });
    return 0;
  }
}

/**
 * The tick's look at a parked task: back to its pool's queue if its key is free (its wake-up was missed),
 * else looked at again later. True when it was woken.
 */
export async function recheckParked(deps: Deps, task: Task): Promise<boolean> {
  const key = scopedConcurrencyKey(task) as string;
  if ((await deps.counters.keyState(key)).active < CONCURRENCY_KEY_LIMIT) {
    const woken = await unpark(deps, task);
    if (woken) await admit(deps, woken.pool, [woken]);
    return woken !== undefined;
  }
  const later = new Date(deps.clock.now().getTime() + KEY_RECHECK_SECONDS * 1000).toISOString();
  const next: Task = { ...task, version: task.version + 1, due_time: later };
  await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task }).catch(
    (err: unknown) => {
      if (!(err instanceof CommitConflict)) throw err;
    },
  );
  return false;
}

/** The ready queue's order, as the ready index sorts it (readyKeyOf). */
const readyOrder = (a: Task, b: Task) => {
  const [ka, kb] = [readyKeyOf(a), readyKeyOf(b)];
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/**
 * The records and slots of dispatching a queued task: the task dispatched with a new run, a pool slot
 * held, and a slot of each of its limited concurrency scopes.
 */
function dispatching(
  deps: Pick<Deps, "config" | "clock">,
  task: Task,
  pool: PoolConfig,
  budgets: BudgetClaim[],
): { next: Task; run: Run; acquire: SlotClaim } {
  assertTransition(task.status, "dispatched");
  const now = deps.clock.now();
  const scopes = scopeClaimsOf(deps.config, task);
  const runNumber = (task.run_count ?? 0) + 1;
  const runId = runIdFor(task.uuid, runNumber);
  const iso = now.toISOString();
  const next: Task = {
    ...withBudgetHold(task, budgets),
    version: task.version + 1,
    status: "dispatched",
    run_id: runId,
    run_count: runNumber,
    attempt: task.attempt + 1,
    update_time: iso,
    dispatch_time: iso,
    held_scopes: scopes.length > 0 ? scopes.map(({ scope }) => scope) : undefined,
    due_time: new Date(now.getTime() + DISPATCH_CONFIRM_SECONDS * 1000).toISOString(),
  };
  const run: Run = {
    run_id: runId,
    version: 1,
    task_uuid: task.uuid,
    tenant: task.tenant,
    pool: pool.name,
    attempt: next.attempt,
    occurrence: task.occurrence,
    status: "dispatched",
    tags: {},
    create_time: iso,
    update_time: iso,
  };
  const acquire: SlotClaim = {
    pool: pool.name,
    maxConcurrency: pool.max_concurrency,
    concurrencyKey: scopedConcurrencyKey(task),
    keyLimit: CONCURRENCY_KEY_LIMIT,
    now: iso,
    ...(pool.max_concurrency <= HELD_SINCE_POOL_LIMIT && { heldSince: iso }),
    ...(scopes.length > 0 && { scopes }),
    ...(budgets.length > 0 && { budgets }),
    ...(task.fair_round !== undefined && { fairRound: { priority: task.priority, round: task.fair_round } }),
  };
  return { next, run, acquire };
}

async function admitOne(deps: Deps, pool: PoolConfig, task: Task) {
  const budgets = await budgetClaims(deps, task, pool);
  const { next, run, acquire } = dispatching(deps, task, pool, budgets);
  try {
    await commitChange(
      deps,
      { tasks: [{ next, expectVersion: task.version }], runs: [{ next: run }], acquire },
      { task },
    );
  } catch (err) {
    if (err instanceof CommitConflict) return err.reason;
    throw err;
  }
  await dispatch(deps, next, run);
  return next;
}

/**
 * Stores a task being submitted as already dispatched when its pool has a free slot and no task waiting:
 * one transaction, with no read first, instead of storing it queued and then admitting it. The pool item
 * counts its queued tasks, and the slot is taken only while that count is 0, so a submission never passes
 * a waiting task. `change` is the submission's (the new task, and its idempotency record). Returns the task
 * as stored, or undefined when it has to queue (a task waits, the pool is closed, or its key is busy) and
 * nothing was written.
 */
export async function admitAtSubmit(
  deps: Deps,
  pool: PoolConfig,
  change: StateChange & { tasks: [RecordWrite<Task>] },
): Promise<Task | undefined> {
  const task = change.tasks[0].next;
  const { next, run, acquire } = dispatching(deps, task, pool, await budgetClaims(deps, task, pool));
  try {
    await commitChange(
      deps,
      { ...change, tasks: [{ next }], runs: [{ next: run }], acquire: { ...acquire, noneQueued: true } },
      {},
    );
  } catch (err) {
    const waits: CommitConflictReason[] = [
      "pool_closed",
      "key_busy",
      "scope_busy",
      "budget_spent",
      "pool_budget_spent",
    ];
    if (err instanceof CommitConflict && waits.includes(err.reason)) return undefined;
    throw err;
  }
  await dispatch(deps, next, run);
  return next;
}

/** Sends a dispatch just committed; a failed send is only logged, since the tick re-sends it. */
const dispatch = (deps: Deps, task: Task, run: Run) =>
  sendDispatch(deps, task, run).catch((err: unknown) =>
    deps.log.warn("dispatch send failed; the tick re-sends it", { run_id: run.run_id, error: String(err) }),
  );

/**
 * Puts a dispatched task's run on its pool queue. Idempotent within SQS's dedup window. With the run just
 * written, the message carries both records (see QueueMessageBody.snapshot).
 */
export async function sendDispatch(deps: Pick<Deps, "queue">, task: Task, run?: Run): Promise<void> {
  const runId = task.run_id as string;
  await deps.queue.send(task.pool, {
    body: encodeDispatch(task, run),
    dedupId: runId,
    groupId: messageGroupId(task, runId),
  });
}

/** Admits in every pool; the tick calls it so that a missed admission only delays work. */
export async function pumpAll(deps: Deps): Promise<number> {
  const admitted = await Promise.all(
    deps.config.pools.map((p) =>
      admit(deps, p.name).catch((err: unknown) => {
        deps.log.error("admission failed; the next tick tries again", { pool: p.name, error: String(err) });
        return [];
      }),
    ),
  );
  return admitted.reduce((n, list) => n + list.length, 0);
}
