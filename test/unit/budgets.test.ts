/** Daily budgets: reserved at admission, settled at the run's end, waited for or refused past, reported as usage. */
import { describe, expect, it } from "vitest";
import type { Principal } from "../../core/auth.ts";
import { tenantUsage } from "../../core/budgets.ts";
import { claimRun, type RunOutcome, settleRun } from "../../core/execution.ts";
import { queuePlace } from "../../core/queues.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { cancelTask, getTask, submitTask } from "../../core/tasks.ts";
import { createTenant, patchTenant } from "../../core/tenants.ts";
import { tick } from "../../core/tick.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const CONFIG = `
pools:
  - { name: claude-a, tool: claude, account: a, max_concurrency: 4 }
  - { name: capped, tool: codex, account: x, max_concurrency: 4, budget: { tokens_per_day: 100 } }
`;

type Deps = ReturnType<typeof memoryDeps>["deps"];

const ran = (cost_usd: number, total = 50): RunOutcome => ({
  exitCode: 0,
  files: [],
  tail: "",
  durationMs: 10,
  cost_usd,
  tokens: { input: total / 2, output: total / 2, total },
});

/** A tenant with a budget, and its key's principal. */
async function tenantWith(deps: Deps, budget: object) {
  const { tenant } = await createTenant(deps, ADMIN, {
    name: "acme",
    rate_limit_per_minute: 1000,
    max_queued_tasks: 100,
    max_submissions_per_minute: 1000,
  });
  await patchTenant(deps, ADMIN, tenant.id, { budget: { on_exceed: "wait", ...budget } });
  const principal: Principal = {
    kind: "tenant",
    tenantId: tenant.id,
    keyId: "k",
    scopes: ["tasks:read", "tasks:write"],
  };
  return { id: tenant.id, principal };
}

const submit = async (deps: Deps, principal: Principal, body: object = {}) =>
  (await submitTask(deps, principal, submitTaskSchema.parse({ pool: "claude-a", prompt: "x", ...body })))
    .task;

async function finish(deps: Deps, uuid: string, outcome: RunOutcome) {
  const task = await getTask(deps, ADMIN, uuid);
  const claim = await claimRun(deps, { task_uuid: task.uuid, run_id: task.run_id as string }, "w1");
  if (!claim.claimed) throw new Error(claim.reason);
  return settleRun(deps, claim.held, { kind: "finished", outcome });
}

describe("a tenant's daily budget", () => {
  it("admits while the day's committed spend is under it: $0.05 at $0.02 a run admits three, the fourth waits", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const { id, principal } = await tenantWith(deps, { usd_per_day: 0.05 });
    const done = [];
    for (let i = 0; i < 3; i++) {
      const task = await submit(deps, principal);
      expect(task.status).toBe("dispatched");
      done.push(await finish(deps, task.uuid, ran(0.02)));
    }
    const fourth = await submit(deps, principal);
    const waiting = await getTask(deps, ADMIN, fourth.uuid);
    expect(waiting).toMatchObject({ status: "queued", budget_parked: true });
    const tomorrow = "2026-01-02T00:00:00.000Z";
    expect(await queuePlace(deps, waiting)).toEqual({ waiting_reason: "budget", waiting_until: tomorrow });
    const usage = await tenantUsage(deps, principal, id, 2);
    expect(usage.days[0]).toEqual({
      day: "2026-01-01",
      usd: 0.06,
      tokens: 150,
      runs: 3,
      committed_usd: 0.06,
      committed_tokens: 150,
      pools: [{ pool: "claude-a", tool: "claude", usd: 0.06, tokens: 150, runs: 3 }],
    });
    expect(usage.days[1]).toMatchObject({ day: "2025-12-31", usd: 0, runs: 0, committed_usd: null });
    // The next UTC day has a budget of its own: the tick admits the waiting task.
    clock.advance(86_400_000);
    await tick(deps);
    const admitted = await getTask(deps, ADMIN, fourth.uuid);
    expect(admitted.status).toBe("dispatched");
    expect(admitted.budget_parked).toBeUndefined();
  });

  it("reserves a task's max_budget_usd while it runs, so tasks submitted together cannot all pass", async () => {
    const { deps } = memoryDeps(CONFIG);
    const { id, principal } = await tenantWith(deps, { usd_per_day: 0.05 });
    const tasks = [];
    for (let i = 0; i < 4; i++) tasks.push(await submit(deps, principal, { max_budget_usd: 0.02 }));
    expect(tasks.map((t) => t.status)).toEqual(["dispatched", "dispatched", "dispatched", "queued"]);
    expect(tasks[0]?.budget_hold).toEqual({
      day: "2026-01-01",
      scopes: [`tenant:${id}`],
      usd: 0.02,
      tokens: 0,
    });
    // A run that spent less than it reserved gives the rest back at its settle.
    await finish(deps, tasks[0]?.uuid ?? "", ran(0.005));
    const [committed] = await deps.counters.spend(`tenant:${id}`, "2026-01-01", "2026-01-01");
    expect(committed?.committed_usd).toBeCloseTo(0.045, 10);
  });

  it("gives back what a task canceled before its run started reserved, counting no run", async () => {
    const { deps } = memoryDeps(CONFIG);
    const { id, principal } = await tenantWith(deps, { usd_per_day: 0.05 });
    const first = await submit(deps, principal, { max_budget_usd: 0.02 });
    const second = await submit(deps, principal, { max_budget_usd: 0.02 });
    expect([first.status, second.status]).toEqual(["dispatched", "dispatched"]);
    const committed = async () =>
      (await deps.counters.spend(`tenant:${id}`, "2026-01-01", "2026-01-01")).find((i) => !i.pool);
    expect((await committed())?.committed_usd).toBeCloseTo(0.04, 10);
    await cancelTask(deps, principal, first.uuid);
    expect((await committed())?.committed_usd).toBeCloseTo(0.02, 10);
    const [today] = (await tenantUsage(deps, principal, id, 1)).days;
    expect(today).toMatchObject({ runs: 0, usd: 0, pools: [], committed_usd: 0.02 });
  });

  it("refuses submissions past it when its budget says so: 409/1005 naming budget", async () => {
    const { deps } = memoryDeps(CONFIG);
    const { principal } = await tenantWith(deps, { usd_per_day: 0.01, on_exceed: "refuse" });
    const first = await submit(deps, principal);
    await finish(deps, first.uuid, ran(0.02));
    await expect(submit(deps, principal)).rejects.toMatchObject({
      code: "1005",
      message: expect.stringMatching(/^budget: tenant t_\w+ has committed \$0\.0200/),
    });
  });

  it("is one tenant's: another tenant without a budget is not held, and cannot read its usage", async () => {
    const { deps } = memoryDeps(CONFIG);
    const { id, principal } = await tenantWith(deps, { usd_per_day: 0.01 });
    await finish(deps, (await submit(deps, principal)).uuid, ran(0.02));
    expect((await submit(deps, principal)).status).toBe("queued");
    expect((await submit(deps, ADMIN)).status).toBe("dispatched");
    const other: Principal = { kind: "tenant", tenantId: "t_other", keyId: "k2", scopes: ["tasks:read"] };
    await expect(tenantUsage(deps, other, id, 1)).rejects.toMatchObject({ code: "1013" });
  });
});

describe("a pool's daily budget", () => {
  it("closes the pool for the day once its tokens are spent, for every tenant", async () => {
    const { deps } = memoryDeps(CONFIG);
    const first = await submit(deps, ADMIN, { pool: "capped" });
    await finish(deps, first.uuid, ran(0, 120));
    const next = await submit(deps, ADMIN, { pool: "capped" });
    expect(next.status).toBe("queued");
    // Not parked: the pool admits nothing, so its queue keeps its order for the next day.
    expect((await getTask(deps, ADMIN, next.uuid)).budget_parked).toBeUndefined();
  });
});
