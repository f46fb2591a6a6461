/**
 * Daily budgets, per tenant (PATCH /v2/tenants/{id}) and per pool (its config), in dollars and tokens over
 * UTC days. Admission reserves an estimate of a task's spend in the same transaction that takes its slot,
 * and only while what the day has committed (reserved and spent) is under each budget: the task's
 * `max_budget_usd`, else the p90 of its pool's recent runs that had a budget. The run's settle replaces
 * the reservation with what the CLI reported. A task over its tenant's budget waits out of its pool's
 * queue (`waiting_reason: "budget"`), looked at again every few minutes and at the day's turn; a pool over
 * its own admits nothing until then. A tenant whose budget says `refuse` gets its submissions refused.
 * Every settled run also counts into its tenant's usage by day and pool (GET /v2/tenants/{id}/usage).
 */
import { canSee, DEFAULT_TENANT, type Principal, requireScope } from "./auth.ts";
import type { PoolConfig } from "./config.ts";
import type { Deps } from "./deps.ts";
import { InsufficientResourcesError } from "./errors.ts";
import { ringSlot } from "./estimate.ts";
import type { BudgetClaim, CostSample, SpendChange } from "./ports.ts";
import type { Task } from "./records.ts";
import { percentileOf } from "./slas.ts";
import { tenantSettingsOf } from "./tenant-settings.ts";
import { tenantNotFound } from "./tenants.ts";
import { TtlCache } from "./ttl-cache.ts";

/** The UTC day an instant falls on, `2026-12-03`. */
export const dayOf = (at: Date) => at.toISOString().slice(0, 10);
/** When the UTC day after `at` starts. */
export const nextDayStart = (at: Date) =>
  new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + 1)).toISOString();

export const tenantScope = (tenant: string) => `tenant:${tenant}`;
export const poolScope = (pool: string) => `pool:${pool}`;

/** A pool's recent budgeted runs kept for the estimate: their dollars and tokens. */
export const COST_SAMPLE_SLOTS = 48;
/** A parked task is looked at again this often: settles may have left room below the day's budget. */
export const BUDGET_RECHECK_SECONDS = 300;
/** How long a process trusts what it read of a pool's recent costs. */
const COSTS_CACHE_MS = 30_000;
const costCaches = new WeakMap<object, TtlCache<string, CostSample[]>>();
function costCacheOf(deps: Pick<Deps, "counters" | "clock">) {
  const found = costCaches.get(deps.counters);
  if (found) return found;
  const made = new TtlCache<string, CostSample[]>(() => deps.clock.now().getTime(), COSTS_CACHE_MS);
  costCaches.set(deps.counters, made);
  return made;
}

const tenantBudgetOf = async (deps: Pick<Deps, "tenants" | "clock">, tenant: string) =>
  (await tenantSettingsOf(deps, tenant)).budget;

const p90 = (values: number[]) => percentileOf(values, 90) ?? 0;

/** What a task's run is expected to spend: its `max_budget_usd`, else its pool's recent p90. */
async function estimateOf(deps: Pick<Deps, "tenants" | "counters" | "clock">, task: Task) {
  const recent = (await costCacheOf(deps).get(task.pool, () => deps.counters.costSamples(task.pool))) ?? [];
  return {
    usd: task.max_budget_usd ?? p90(recent.map((s) => s.usd)),
    tokens: p90(recent.map((s) => s.tokens)),
  };
}

/**
 * The budget claims of admitting `task` now: one per daily budget that applies (its tenant's, its pool's),
 * each reserving the task's estimate while the day's committed spend is under the budget. None when no
 * budget applies, and then nothing is read.
 */
export async function budgetClaims(
  deps: Pick<Deps, "tenants" | "counters" | "clock">,
  task: Task,
  pool: PoolConfig,
): Promise<BudgetClaim[]> {
  const tenantBudget = await tenantBudgetOf(deps, task.tenant);
  const budgets = [
    ...(tenantBudget ? [{ scope: tenantScope(task.tenant), budget: tenantBudget, ofPool: false }] : []),
    ...(pool.budget ? [{ scope: poolScope(pool.name), budget: pool.budget, ofPool: true }] : []),
  ].filter(({ budget }) => budget.usd_per_day !== undefined || budget.tokens_per_day !== undefined);
  if (budgets.length === 0) return [];
  const estimate = await estimateOf(deps, task);
  const day = dayOf(deps.clock.now());
  return budgets.map(({ scope, budget, ofPool }) => ({
    scope,
    day,
    usd: estimate.usd,
    tokens: estimate.tokens,
    limits: { usd: budget.usd_per_day, tokens: budget.tokens_per_day },
    ofPool,
  }));
}

/** The task as admitted with these claims: what it holds of each budget. */
export const withBudgetHold = (task: Task, claims: BudgetClaim[]): Task =>
  claims.length === 0
    ? { ...task, budget_hold: undefined }
    : {
        ...task,
        budget_hold: {
          day: claims[0]?.day as string,
          scopes: claims.map((c) => c.scope),
          usd: claims[0]?.usd ?? 0,
          tokens: claims[0]?.tokens ?? 0,
        },
      };

/**
 * What a run's settle counts: its spend into its tenant's usage of the day (by pool), and the difference
 * to what its admission reserved into each budget it held. A run that reported no cost (lost, or a CLI
 * that tells none) keeps its reservation as spent.
 */
export function spendOf(
  task: Task,
  reported: { cost_usd?: number; tokens?: { total?: number; input?: number; output?: number } } | undefined,
  now: Date,
): SpendChange {
  const hold = task.budget_hold;
  const reportedTokens =
    reported?.tokens &&
    (reported.tokens.total ?? (reported.tokens.input ?? 0) + (reported.tokens.output ?? 0));
  const usd = reported?.cost_usd ?? hold?.usd ?? 0;
  const tokens = reportedTokens ?? hold?.tokens ?? 0;
  return {
    tenant: task.tenant,
    pool: task.pool,
    day: hold?.day ?? dayOf(now),
    usd,
    tokens,
    ran: true,
    ...(hold && {
      hold: { scopes: hold.scopes, usd: usd - hold.usd, tokens: tokens - hold.tokens },
      cost: { slot: ringSlot(task.run_id ?? task.uuid, COST_SAMPLE_SLOTS), usd, tokens },
    }),
  };
}

/** What a task canceled before its run started gives back: all it reserved, nothing spent. */
export function holdReturned(task: Task): SpendChange | undefined {
  const hold = task.budget_hold;
  if (!hold) return undefined;
  const { scopes, day } = hold;
  const returned = { scopes, usd: -hold.usd, tokens: -hold.tokens };
  return { tenant: task.tenant, pool: task.pool, day, usd: 0, tokens: 0, ran: false, hold: returned };
}

/**
 * A submission of a tenant whose budget says `refuse`, while the day's committed spend has reached it: a
 * 409 (1005) naming `budget`. One read, only for such tenants.
 */
export async function refuseOverBudget(deps: Pick<Deps, "tenants" | "counters" | "clock">, tenant: string) {
  const budget = await tenantBudgetOf(deps, tenant);
  if (budget?.on_exceed !== "refuse") return;
  const day = dayOf(deps.clock.now());
  const [spent] = await deps.counters.spend(tenantScope(tenant), day, day);
  const over =
    (budget.usd_per_day !== undefined && (spent?.committed_usd ?? 0) >= budget.usd_per_day) ||
    (budget.tokens_per_day !== undefined && (spent?.committed_tokens ?? 0) >= budget.tokens_per_day);
  if (over) {
    throw new InsufficientResourcesError(
      `budget: tenant ${tenant} has committed $${(spent?.committed_usd ?? 0).toFixed(4)} and ` +
        `${spent?.committed_tokens ?? 0} tokens of its daily budget today`,
    );
  }
}

/**
 * A tenant's spend over its last `days` UTC days (today first): each day's dollars, tokens and runs, by
 * pool (with the pool's tool), and what its budget had committed (spent plus reserved for runs going).
 * A tenant key sees its own; another tenant's is a 404.
 */
export async function tenantUsage(
  deps: Pick<Deps, "tenants" | "counters" | "clock" | "config">,
  principal: Principal,
  id: string,
  days: number,
) {
  requireScope(principal, "tasks:read");
  if (!canSee(principal, id)) throw tenantNotFound(id);
  const tenant = await deps.tenants.getTenant(id);
  // The admin's own tasks go to the default tenant, which has no record.
  if (!tenant && id !== DEFAULT_TENANT) throw tenantNotFound(id);
  const now = deps.clock.now();
  const dayList = Array.from({ length: days }, (_, i) => dayOf(new Date(now.getTime() - i * 86_400_000)));
  const items = await deps.counters.spend(tenantScope(id), dayList.at(-1) as string, dayList[0] as string);
  const toolOf = (pool: string) => deps.config.pools.find((p) => p.name === pool)?.tool ?? null;
  const round = (usd: number) => Math.round(usd * 1e6) / 1e6;
  return {
    tenant: id,
    budget: tenant?.budget ?? null,
    days: dayList.map((day) => {
      const pools = items.filter((item) => item.day === day && item.pool !== undefined);
      const committed = items.find((item) => item.day === day && item.pool === undefined);
      return {
        day,
        usd: round(pools.reduce((sum, p) => sum + p.usd, 0)),
        tokens: pools.reduce((sum, p) => sum + p.tokens, 0),
        runs: pools.reduce((sum, p) => sum + p.runs, 0),
        committed_usd: committed ? round(committed.committed_usd) : null,
        committed_tokens: committed ? committed.committed_tokens : null,
        pools: pools.map((p) => ({
          pool: p.pool as string,
          tool: toolOf(p.pool as string),
          usd: round(p.usd),
          tokens: p.tokens,
          runs: p.runs,
        })),
      };
    }),
  };
}
