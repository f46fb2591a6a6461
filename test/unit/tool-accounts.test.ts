/** The CLI accounts: what limits one, what its limit does to its pools and their queued tasks, and its end. */
import { describe, expect, it } from "vitest";
import type { Principal } from "../../core/auth.ts";
import { setPoolPaused } from "../../core/controls.ts";
import { claimRun, type RunOutcome, settleRun } from "../../core/execution.ts";
import { PAUSED_INDEFINITELY } from "../../core/ports.ts";
import { queuePlace } from "../../core/queues.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { getTask, submitTask } from "../../core/tasks.ts";
import { tick } from "../../core/tick.ts";
import { listToolAccounts, setToolAccountState } from "../../core/tool-accounts.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const TENANT: Principal = {
  kind: "tenant",
  tenantId: "t1",
  keyId: "k1",
  scopes: ["tasks:read", "tasks:write"],
};

const CONFIG = `
pools:
  - { name: claude-a, tool: claude, account: a, max_concurrency: 1 }
  - { name: claude-a2, tool: claude, account: a, max_concurrency: 1 }
  - { name: claude-b, tool: claude, account: b, max_concurrency: 1 }
  - { name: codex-x, tool: codex, account: x, max_concurrency: 1 }
  - { name: claude-c, tool: claude, account: c, max_concurrency: 1, allow_overage: true }
`;

type Deps = ReturnType<typeof memoryDeps>["deps"];

const outcome = (fields: Partial<RunOutcome>): RunOutcome => ({
  exitCode: 0,
  files: [],
  tail: "",
  durationMs: 10,
  ...fields,
});

const submit = async (deps: Deps, body: object) =>
  (await submitTask(deps, ADMIN, submitTaskSchema.parse({ prompt: "x", ...body }))).task;

/** Submits a task to `pool` and settles its run with `result`. */
async function runOn(deps: Deps, pool: string, result: RunOutcome) {
  const task = await submit(deps, { pool });
  const claim = await claimRun(deps, { task_uuid: task.uuid, run_id: task.run_id as string }, "w1");
  if (!claim.claimed) throw new Error(claim.reason);
  return settleRun(deps, claim.held, { kind: "finished", outcome: result });
}

const accountOf = async (deps: Deps, tool: string, account: string) =>
  (await listToolAccounts(deps, ADMIN)).find((a) => a.tool === tool && a.account === account);

const rejected = (resetAt: Date, window = "five_hour"): Partial<RunOutcome> => ({
  exitCode: 1,
  error: "exit code 1: You've hit your 5-hour limit",
  rateLimit: { resetAt, window, source: "event" },
  usage: { status: "rejected", window, resetAt, utilization: 1 },
});

describe("an account's state", () => {
  it("is limited by a rejection with a reset: every pool of the account pauses until then", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const reset = new Date(clock.now().getTime() + 60_000);
    await runOn(deps, "claude-a", outcome(rejected(reset)));
    expect(await accountOf(deps, "claude", "a")).toEqual({
      tool: "claude",
      account: "a",
      state: "limited",
      reset_at: reset.toISOString(),
      limit_source: "rate_limit_event",
      window: "five_hour",
      last_usage: null,
      pools: ["claude-a", "claude-a2"],
    });
    for (const pool of ["claude-a", "claude-a2"])
      expect((await deps.counters.poolState(pool)).pausedUntil).toBe(reset.toISOString());
    expect((await deps.counters.poolState("claude-b")).pausedUntil).toBeUndefined();
    expect((await accountOf(deps, "claude", "b"))?.state).toBe("available");
  });

  it("is not limited by an allowed status, with a warning or not: only its last usage is noted", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const resetAt = new Date(clock.now().getTime() + 3600_000);
    const usage = {
      status: "allowed_warning",
      window: "five_hour",
      resetAt,
      utilization: 0.91,
      overage: false,
    };
    const task = await runOn(deps, "claude-a", outcome({ usage }));
    expect(task?.status).toBe("succeeded");
    expect(await accountOf(deps, "claude", "a")).toMatchObject({
      state: "available",
      reset_at: null,
      last_usage: {
        time: clock.now().toISOString(),
        status: "allowed_warning",
        window: "five_hour",
        utilization: 0.91,
        resets_at: resetAt.toISOString(),
        overage: false,
      },
    });
    expect((await deps.counters.poolState("claude-a")).pausedUntil).toBeUndefined();
  });

  it("caps a reset by the window it names: a five-hour window cannot close an account for a week", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const wrong = new Date(clock.now().getTime() + 6 * 86_400_000);
    await runOn(deps, "claude-a", outcome(rejected(wrong)));
    const fiveHours = new Date(clock.now().getTime() + 5 * 3600_000).toISOString();
    expect((await accountOf(deps, "claude", "a"))?.reset_at).toBe(fiveHours);
    expect((await deps.counters.poolState("claude-a")).pausedUntil).toBe(fiveHours);
  });

  it("is limited by paid overage a pool does not allow, though the run succeeded", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const resetAt = new Date(clock.now().getTime() + 3600_000);
    const usage = { status: "rejected", window: "five_hour", resetAt, overage: true };
    expect((await runOn(deps, "claude-a", outcome({ usage })))?.status).toBe("succeeded");
    expect(await accountOf(deps, "claude", "a")).toMatchObject({ state: "limited", limit_source: "overage" });
    // Where overage is allowed, it goes on.
    expect((await runOn(deps, "claude-c", outcome({ usage })))?.status).toBe("succeeded");
    expect((await accountOf(deps, "claude", "c"))?.state).toBe("available");
  });

  it("is available again once its reset has passed, and the tick stores it so", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    await runOn(deps, "claude-a", outcome(rejected(new Date(clock.now().getTime() + 60_000))));
    clock.advance(61_000);
    expect((await accountOf(deps, "claude", "a"))?.state).toBe("available");
    await tick(deps);
    const [stored] = await deps.counters.toolAccounts();
    expect(stored).toMatchObject({ state: "available" });
    expect(stored?.reset_at).toBeUndefined();
    // The pool admits again: the limited task, which waited for the reset, first.
    const [limited] = (await deps.tasks.listTasks({ tenant: "default", size: 10 })).items;
    expect(limited).toMatchObject({ pool: "claude-a", status: "dispatched", attempt: 1 });
  });

  it("is cleared by an admin: limit pauses lift, an admin's pool pause stays", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    await setPoolPaused(deps, ADMIN, "claude-a2", true);
    await runOn(deps, "claude-a", outcome(rejected(new Date(clock.now().getTime() + 3600_000))));
    const waiting = await submit(deps, { pool: "claude-a" });
    expect(waiting.status).toBe("queued");
    const cleared = await setToolAccountState(deps, ADMIN, "claude", "a", "available");
    expect(cleared).toMatchObject({ state: "available", reset_at: null });
    expect((await deps.counters.poolState("claude-a")).pausedUntil).toBeUndefined();
    expect((await deps.counters.poolState("claude-a2")).pausedUntil).toBe(PAUSED_INDEFINITELY);
    // The cleared pool admitted what waited.
    expect((await getTask(deps, ADMIN, waiting.uuid)).status).toBe("dispatched");
  });

  it("is disabled by an admin until made available; only the admin may, and only a used account", async () => {
    const { deps } = memoryDeps(CONFIG);
    await expect(setToolAccountState(deps, TENANT, "claude", "a", "disabled")).rejects.toThrow(/admin/);
    await expect(setToolAccountState(deps, ADMIN, "claude", "nobody", "disabled")).rejects.toMatchObject({
      code: "1004",
    });
    await expect(setToolAccountState(deps, ADMIN, "cobol", "a", "disabled")).rejects.toMatchObject({
      code: "1001",
      field: "tool",
    });
    expect((await listToolAccounts(deps, TENANT)).map((a) => a.account)).toEqual(["a", "b", "x", "c"]);
    expect((await setToolAccountState(deps, ADMIN, "claude", "a", "disabled")).state).toBe("disabled");
    const pinned = await submit(deps, { pool: "claude-a" });
    expect(await queuePlace(deps, pinned)).toMatchObject({
      waiting_reason: "account_disabled",
      waiting_until: null,
    });
    await setToolAccountState(deps, ADMIN, "claude", "a", "available");
    expect((await getTask(deps, ADMIN, pinned.uuid)).status).toBe("dispatched");
  });
});

describe("routing around a limited account", () => {
  it("moves its queued tool-only tasks to another pool of the tool, in their order; pinned ones wait", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    // Fill every claude pool, then queue: tool-only tasks spread over the pools, one pinned to claude-a.
    // The first holder names only its tool: with every pool empty, it goes to the first, claude-a.
    const holders = [await submit(deps, { tool: "claude" })];
    for (const pool of ["claude-a2", "claude-b", "claude-c"]) holders.push(await submit(deps, { pool }));
    expect(holders[0]?.pool).toBe("claude-a");
    const movable = [];
    for (let i = 0; i < 6; i++) {
      clock.advance(1000);
      movable.push(await submit(deps, { tool: "claude", priority: i === 5 ? 9 : 5 }));
    }
    const pinned = await submit(deps, { pool: "claude-a" });
    expect(movable.map((t) => t.routing)).toEqual(movable.map(() => ({})));
    // claude-a's holder hits the five-hour limit.
    const reset = new Date(clock.now().getTime() + 60_000);
    const claim = await claimRun(
      deps,
      { task_uuid: holders[0]?.uuid ?? "", run_id: holders[0]?.run_id ?? "" },
      "w1",
    );
    if (!claim.claimed) throw new Error(claim.reason);
    await settleRun(deps, claim.held, { kind: "finished", outcome: outcome(rejected(reset)) });
    const after = await Promise.all(movable.map((t) => getTask(deps, ADMIN, t.uuid)));
    for (const task of after) expect(["claude-b", "claude-c"]).toContain(task.pool);
    // Priority and age kept: the same ready times, the priority-9 one first in its new queue.
    expect(after.map((t) => [t.priority, t.ready_time])).toEqual(
      movable.map((t) => [t.priority, t.ready_time]),
    );
    // The pools' counts of queued tasks moved with them; the tenant's stayed.
    const all = [
      ...after,
      await getTask(deps, ADMIN, pinned.uuid),
      await getTask(deps, ADMIN, holders[0]?.uuid ?? ""),
    ];
    for (const pool of ["claude-a", "claude-a2", "claude-b", "claude-c"]) {
      const queued = all.filter((t) => t.status === "queued" && t.pool === pool).length;
      expect((await deps.counters.poolState(pool)).queued).toBe(queued);
    }
    expect(await deps.counters.queuedCount("default")).toBe(all.filter((t) => t.status === "queued").length);
    const stillPinned = await getTask(deps, ADMIN, pinned.uuid);
    expect(stillPinned.pool).toBe("claude-a");
    expect(await queuePlace(deps, stillPinned)).toMatchObject({
      waiting_reason: "account_limited",
      waiting_until: reset.toISOString(),
    });
    // The limited task itself may run elsewhere too: it is queued again at once, its attempt given back.
    const limited = await getTask(deps, ADMIN, holders[0]?.uuid ?? "");
    expect(limited).toMatchObject({ status: "queued", attempt: 0 });
    expect(limited.pool).not.toMatch(/^claude-a/);
  });

  it("sends a tool-only or pattern-routed task to an open pool, and to the one opening first when none is", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    await runOn(deps, "claude-b", outcome(rejected(new Date(clock.now().getTime() + 60_000))));
    await runOn(deps, "claude-c", outcome(rejected(new Date(clock.now().getTime() + 120_000))));
    const byPattern = await submit(deps, { pool: "claude-*" });
    expect(["claude-a", "claude-a2"]).toContain(byPattern.pool);
    expect(byPattern.routing).toEqual({ pools: "claude-*" });
    await setToolAccountState(deps, ADMIN, "claude", "a", "disabled");
    const onB = await submit(deps, { tool: "claude", account: "any" });
    expect(onB).toMatchObject({ pool: "claude-b", status: "queued", routing: { account: "any" } });
    expect(await queuePlace(deps, onB)).toMatchObject({ waiting_reason: "account_limited" });
  });

  it("refuses a pattern or account that no pool matches, and an account its pool does not use", async () => {
    const { deps } = memoryDeps(CONFIG);
    await expect(submit(deps, { pool: "gemini-*" })).rejects.toMatchObject({
      code: "1005",
      message: "pool: no pool runs pool gemini-*",
    });
    await expect(submit(deps, { tool: "claude", account: "zzz" })).rejects.toMatchObject({
      code: "1005",
      message: "account: no pool runs account zzz, claude",
    });
    await expect(submit(deps, { pool: "c*" })).rejects.toMatchObject({ code: "1001", field: "tool" });
    expect((await submit(deps, { pool: "c*", tool: "codex" })).pool).toBe("codex-x");
    await expect(submit(deps, { pool: "claude-a", account: "b" })).rejects.toMatchObject({
      code: "1007",
      message: "account: pool claude-a uses account a, not b",
    });
  });
});
