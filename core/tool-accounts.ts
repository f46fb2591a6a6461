/**
 * The CLI accounts behind the pools: each (tool, account) is `available`, `limited` until a usage window
 * resets, or `disabled` by an admin. Only a real rejection limits an account (the CLI's rejected status,
 * or its limit message with a reset time); allowed statuses and warnings are only noted as its last usage.
 * A limit pauses every pool of the account until it lifts (the pause is what admission checks, in the same
 * transaction as the slot), and moves the queued tasks that may run elsewhere to another pool of the tool.
 */
import { admit, choosePool } from "./admission.ts";
import { type Principal, requireScope } from "./auth.ts";
import { commitChange } from "./commit.ts";
import { type CliPool, isCliPool, type PoolConfig } from "./config.ts";
import type { Deps } from "./deps.ts";
import { ERROR_CODES, NotFoundError, ValidationError } from "./errors.ts";
import { TOOLS, type Tool } from "./fields.ts";
import { retryOnConflict } from "./optimistic.ts";
import { subjectOf } from "./policies.ts";
import { ACCOUNT_DISABLED_UNTIL, CommitConflict } from "./ports.ts";
import type { RateLimitHit, UsageReport } from "./rate-limits.ts";
import type { Task } from "./records.ts";

export const TOOL_ACCOUNT_STATES = ["available", "limited", "disabled"] as const;
export type ToolAccountState = (typeof TOOL_ACCOUNT_STATES)[number];

/** What limited an account: the CLI's rejected status, its limit message, or paid overage it may not use. */
export type LimitSource = "rate_limit_event" | "message" | "overage";

/** A (tool, account)'s stored state. */
export interface ToolAccount {
  tool: Tool;
  account: string;
  version: number;
  state: ToolAccountState;
  /** While limited: when the limit lifts. */
  reset_at?: string;
  limit_source?: LimitSource;
  /** The usage window that was exhausted (`five_hour`, `seven_day`, …), when the CLI named it. */
  window?: string;
  limited_at?: string;
  /** The last usage report a run of the account carried. */
  last_usage?: {
    time: string;
    status: string;
    window?: string;
    utilization?: number;
    resets_at?: string;
    overage?: boolean;
  };
  update_time: string;
}

/** The longest a CLI's limit message can close an account: its weekly window. A wrong parse costs no more. */
export const LIMIT_PAUSE_CAP_SECONDS = 7 * 86_400;
/** A usage window named by the CLI caps its own reset: a five-hour window resets within five hours. */
const WINDOW_SECONDS: Record<string, number> = { five_hour: 5 * 3600 };

/** When a limit the CLI reported lifts, capped by its window (else by the weekly one). */
export const limitLiftsAt = (resetAt: Date, now: Date, window?: string) =>
  new Date(
    Math.min(
      resetAt.getTime(),
      now.getTime() + (WINDOW_SECONDS[window ?? ""] ?? LIMIT_PAUSE_CAP_SECONDS) * 1000,
    ),
  );

/** An account limit a run's outcome tells of. */
export interface AccountLimit {
  until: Date;
  source: LimitSource;
  window?: string;
}

/**
 * The limit a run's outcome puts on its account: a rejection with a reset in the future, or (unless the
 * pool allows it) a run that drew on paid overage, until its window resets. A 429 that names no reset
 * limits nothing: the task retries with its backoff.
 */
export function limitOf(
  pool: PoolConfig,
  outcome: { rateLimit?: RateLimitHit; usage?: UsageReport },
  now: Date,
): AccountLimit | undefined {
  const { rateLimit, usage } = outcome;
  if (rateLimit?.resetAt && rateLimit.resetAt > now) {
    const source = rateLimit.source === "event" ? "rate_limit_event" : "message";
    return {
      until: limitLiftsAt(rateLimit.resetAt, now, rateLimit.window),
      source,
      window: rateLimit.window,
    };
  }
  if (usage?.overage && !pool.allow_overage && usage.resetAt && usage.resetAt > now) {
    return { until: limitLiftsAt(usage.resetAt, now, usage.window), source: "overage", window: usage.window };
  }
  return undefined;
}

/** The accounts of the configured CLI pools, each with its pools, in config order. */
function configuredAccounts(deps: Pick<Deps, "config">): { tool: Tool; account: string; pools: CliPool[] }[] {
  const accounts = new Map<string, { tool: Tool; account: string; pools: CliPool[] }>();
  for (const pool of deps.config.pools.filter(isCliPool)) {
    const id = `${pool.tool}#${pool.account}`;
    const entry = accounts.get(id) ?? { tool: pool.tool, account: pool.account, pools: [] };
    entry.pools.push(pool);
    accounts.set(id, entry);
  }
  return [...accounts.values()];
}

const poolsOf = (deps: Pick<Deps, "config">, tool: Tool, account: string) =>
  configuredAccounts(deps).find((a) => a.tool === tool && a.account === account)?.pools ?? [];

/** A limit whose reset has passed is over, whether or not the record says so yet. */
const stateAt = (record: ToolAccount | undefined, now: string): ToolAccountState =>
  record?.state === "limited" && (record.reset_at ?? "") <= now
    ? "available"
    : (record?.state ?? "available");

const fresh = (tool: Tool, account: string, now: string): ToolAccount => ({
  tool,
  account,
  version: 0,
  state: "available",
  update_time: now,
});

/** Reads an account's record, changes it, and stores it on its version (a lost race reads again). */
async function changeAccount(
  deps: Pick<Deps, "counters" | "clock">,
  tool: Tool,
  account: string,
  change: (record: ToolAccount, now: string) => ToolAccount | undefined,
): Promise<ToolAccount> {
  return retryOnConflict(async () => {
    const now = deps.clock.now().toISOString();
    const stored = (await deps.counters.toolAccounts()).find((a) => a.tool === tool && a.account === account);
    const current = stored ?? fresh(tool, account, now);
    const next = change({ ...current, state: stateAt(stored, now) }, now);
    if (!next) return current;
    const record = { ...next, version: current.version + 1, update_time: now };
    await deps.counters.putToolAccount({ next: record, expectVersion: stored?.version });
    return record;
  });
}

/**
 * A run of `pool` reported a limit: its account is limited until `limit.until` (the latest report wins,
 * shorter or longer; a disabled account stays so), its pools pause until then, and the queued tasks that
 * may run elsewhere move to another pool of the tool (`alsoMove`: tasks the caller just requeued there).
 */
export async function limitAccount(
  deps: Deps,
  pool: CliPool,
  limit: AccountLimit,
  alsoMove: Task[] = [],
): Promise<void> {
  const until = limit.until.toISOString();
  const record = await changeAccount(deps, pool.tool, pool.account, (current, now) =>
    current.state === "disabled"
      ? undefined
      : {
          ...current,
          state: "limited",
          reset_at: until,
          limit_source: limit.source,
          window: limit.window,
          limited_at: now,
        },
  );
  await holdAccount(deps, record, alsoMove);
}

/**
 * What a run that reported no limit tells of its account: its last usage. Stored when its status or
 * window changed since this process last stored one, or a minute after, so that a busy account costs no
 * write per run.
 */
export async function noteUsage(deps: Deps, pool: CliPool, usage: UsageReport): Promise<void> {
  const seen = lastStored(deps);
  const id = `${pool.tool}#${pool.account}`;
  const now = deps.clock.now().getTime();
  const previous = seen.get(id);
  const same = previous && previous.status === usage.status && previous.window === usage.window;
  if (same && now - previous.at < USAGE_NOTE_MS) return;
  seen.set(id, { status: usage.status, window: usage.window, at: now });
  await changeAccount(deps, pool.tool, pool.account, (current, iso) => ({
    ...current,
    last_usage: {
      time: iso,
      status: usage.status,
      window: usage.window,
      utilization: usage.utilization,
      resets_at: usage.resetAt?.toISOString(),
      overage: usage.overage,
    },
  }));
}

const USAGE_NOTE_MS = 60_000;
const storedUsage = new WeakMap<object, Map<string, { status: string; window?: string; at: number }>>();
function lastStored(deps: Pick<Deps, "counters">) {
  const seen = storedUsage.get(deps.counters) ?? new Map();
  storedUsage.set(deps.counters, seen);
  return seen;
}

/** Pauses the pools of a limited or disabled account, and moves what may run elsewhere. */
async function holdAccount(deps: Deps, record: ToolAccount, alsoMove: Task[] = []): Promise<void> {
  const until = record.state === "disabled" ? ACCOUNT_DISABLED_UNTIL : record.reset_at;
  if (record.state === "available" || !until) return;
  const pools = poolsOf(deps, record.tool, record.account);
  await Promise.all(pools.map((p) => deps.counters.pauseForLimit(p.name, until)));
  await moveQueuedTasks(deps, pools, alsoMove);
}

/** Queued tasks read per pool when moving them off a held account. */
const MOVE_PAGE = 25;
/** Tasks moved off one pool per pass; the tick's next pass goes on. */
const MOVE_BATCH = 100;

/**
 * Moves the queued tasks of held pools that may run on another pool of their tool (Task.routing) to the
 * one where they would start soonest, among those open now, keeping their priority and ready time (so
 * their place). Tasks pinned to a pool stay, and wait for the reset. Then the pools that took tasks admit.
 */
async function moveQueuedTasks(deps: Deps, from: PoolConfig[], alsoMove: Task[]): Promise<number> {
  const moved = new Map<string, Task[]>();
  const seen = new Set<string>();
  const move = async (task: Task) => {
    const waiting = task.key_parked || task.budget_parked;
    if (seen.has(task.uuid) || task.status !== "queued" || !task.routing || waiting) return;
    seen.add(task.uuid);
    const choice = await choosePool(deps, task.tool, subjectOf(task), task.routing);
    if (choice.open === false || choice.pool.name === task.pool) return;
    let next: Task = { ...task, version: task.version + 1, pool: choice.pool.name };
    try {
      next = (await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task })) ?? next;
    } catch (err) {
      if (err instanceof CommitConflict) return;
      throw err;
    }
    moved.set(next.pool, [...(moved.get(next.pool) ?? []), next]);
  };
  for (const task of alsoMove) await move(task);
  for (const pool of from) {
    let after: Task | undefined;
    for (let read = 0; read < MOVE_BATCH; read += MOVE_PAGE) {
      const page = await deps.tasks.readyTasks(pool.name, MOVE_PAGE, after);
      for (const task of page) await move(task);
      if (page.length < MOVE_PAGE) break;
      after = page.at(-1);
    }
  }
  for (const [pool, tasks] of moved) await admit(deps, pool, tasks);
  return [...moved.values()].reduce((n, tasks) => n + tasks.length, 0);
}

/** A (tool, account) as GET /v2/tool-accounts shows it. */
export function toolAccountView(
  entry: { tool: Tool; account: string; pools: PoolConfig[] },
  record: ToolAccount | undefined,
  now: string,
) {
  const state = stateAt(record, now);
  return {
    tool: entry.tool,
    account: entry.account,
    state,
    reset_at: state === "limited" ? (record?.reset_at ?? null) : null,
    limit_source: state === "limited" ? (record?.limit_source ?? null) : null,
    window: state === "limited" ? (record?.window ?? null) : null,
    last_usage: record?.last_usage ?? null,
    pools: entry.pools.map((p) => p.name),
  };
}

export async function listToolAccounts(deps: Deps, principal: Principal) {
  requireScope(principal, "tasks:read");
  const records = await deps.counters.toolAccounts();
  const now = deps.clock.now().toISOString();
  return configuredAccounts(deps).map((entry) =>
    toolAccountView(
      entry,
      records.find((r) => r.tool === entry.tool && r.account === entry.account),
      now,
    ),
  );
}

/**
 * An admin sets an account `available` (clearing a limit: its pools' limit pauses lift, an admin's pool
 * pause stays, and they admit) or `disabled` (its pools take no more work until it is made available,
 * and its movable queued tasks go elsewhere). An account no pool uses is a 404.
 */
export async function setToolAccountState(
  deps: Deps,
  principal: Principal,
  toolName: string,
  account: string,
  state: Exclude<ToolAccountState, "limited">,
) {
  requireScope(principal, "admin");
  const tool = TOOLS.find((t) => t === toolName);
  if (!tool) throw new ValidationError("tool", `must be one of ${TOOLS.join(", ")}`);
  const pools = poolsOf(deps, tool, account);
  // No pool of the account: as unknown as a pool (1004).
  if (pools.length === 0)
    throw new NotFoundError(ERROR_CODES.poolNotFound, `no pool uses ${tool} account ${account}`);
  const record = await changeAccount(deps, tool, account, (current) => ({
    ...current,
    state,
    reset_at: undefined,
    limit_source: undefined,
    window: undefined,
    limited_at: undefined,
  }));
  if (state === "disabled") await holdAccount(deps, record);
  else {
    await Promise.all(pools.map((p) => deps.counters.liftLimitPause(p.name)));
    for (const pool of pools) await admit(deps, pool.name);
  }
  return toolAccountView({ tool, account, pools }, record, deps.clock.now().toISOString());
}

/**
 * The tick's look at the accounts: a limit whose reset passed is stored as over, and a held account's
 * movable queued tasks are moved (those that arrived since, or that a failed move left). Its pools are not
 * paused again here: an admin may have resumed one on purpose, and a pause a crash skipped is made by the
 * next run that meets the limit. Returns how many tasks moved.
 */
export async function reconcileAccounts(deps: Deps): Promise<number> {
  const now = deps.clock.now().toISOString();
  let moved = 0;
  for (const record of await deps.counters.toolAccounts()) {
    const pools = poolsOf(deps, record.tool, record.account);
    if (pools.length === 0 || record.state === "available") continue;
    if (record.state === "limited" && stateAt(record, now) === "available") {
      await changeAccount(deps, record.tool, record.account, (current) =>
        current.state === "available" && current.reset_at !== undefined
          ? { ...current, reset_at: undefined, limit_source: undefined, limited_at: undefined }
          : undefined,
      );
    } else moved += await moveQueuedTasks(deps, pools, []);
  }
  return moved;
}
