/** Fair share within a pool: a flood of one tenant's tasks cannot starve another's trickle. */
import { describe, expect, it } from "vitest";
import type { Principal } from "../../core/auth.ts";
import { claimRun, settleRun } from "../../core/execution.ts";
import type { Task } from "../../core/records.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { getTask, submitTask } from "../../core/tasks.ts";
import { patchTenant } from "../../core/tenants.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const CONFIG = `
pools:
  - { name: p, tool: claude, account: a, max_concurrency: 4 }
`;

type Deps = ReturnType<typeof memoryDeps>["deps"];

/** A tenant record of its own (the memory deps' ids share their first 20 digits) and its key's principal. */
async function tenant(deps: Deps, name: string): Promise<Principal> {
  const id = `t_${name.padEnd(20, "0")}`;
  const create_time = deps.clock.now().toISOString();
  await deps.tenants.createTenant(
    { id, name, rate_limit_per_minute: 10_000, max_queued_tasks: 10_000, create_time },
    {
      key_id: `k-${name}`,
      tenant_id: id,
      key_hash: `hash-${name}`,
      scopes: ["tasks:read", "tasks:write"],
      create_time,
    },
  );
  return { kind: "tenant", tenantId: id, keyId: `k-${name}`, scopes: ["tasks:read", "tasks:write"] };
}

const submit = async (deps: Deps, principal: Principal, name: string, priority = 5) =>
  (await submitTask(deps, principal, submitTaskSchema.parse({ pool: "p", prompt: name, name, priority })))
    .task;

/** Runs the pool to empty, a slot at a time, oldest dispatch first; the names in the order they started. */
async function drain(deps: Deps, tasks: Task[]): Promise<string[]> {
  const started: string[] = [];
  for (;;) {
    const current = await Promise.all(tasks.map((t) => getTask(deps, ADMIN, t.uuid)));
    const next = current
      .filter((t) => t.status === "dispatched")
      .sort((a, b) => ((a.dispatch_time ?? "") < (b.dispatch_time ?? "") ? -1 : 1))[0];
    if (!next) return started;
    started.push(next.name as string);
    const claim = await claimRun(deps, { task_uuid: next.uuid, run_id: next.run_id as string }, "w");
    if (!claim.claimed) throw new Error(claim.reason);
    const done = { exitCode: 0, files: [], tail: "", durationMs: 1 };
    // A millisecond a run: the next admission's dispatch time tells it apart.
    (deps.clock as { advance(ms: number): void }).advance(1);
    await settleRun(deps, claim.held, { kind: "finished", outcome: done });
  }
}

describe("fair share at equal priority", () => {
  it("starts every one of B's 20 before A's 200-task backlog is half done, each tenant in its own order", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const [a, b] = [await tenant(deps, "a"), await tenant(deps, "b")];
    const tasks: Task[] = [];
    for (let i = 0; i < 200; i++) tasks.push(await submit(deps, a, `a${i}`));
    clock.advance(1000);
    for (let i = 0; i < 20; i++) tasks.push(await submit(deps, b, `b${i}`));
    const started = await drain(deps, tasks);
    expect(started).toHaveLength(220);
    const lastB = started.lastIndexOf("b19");
    const aBefore = started.slice(0, lastB).filter((n) => n.startsWith("a")).length;
    expect(aBefore).toBeLessThan(100);
    // Turns: after the 4 that took the slots at once, A and B alternate while both wait.
    expect(aBefore).toBeLessThanOrEqual(4 + 20 + 1);
    const order = (prefix: string) => started.filter((n) => n.startsWith(prefix));
    expect(order("a")).toEqual(Array.from({ length: 200 }, (_, i) => `a${i}`));
    expect(order("b")).toEqual(Array.from({ length: 20 }, (_, i) => `b${i}`));
  });

  it("gives a tenant of weight 2 two turns for the other's one", async () => {
    const { deps } = memoryDeps(CONFIG);
    const [a, b] = [await tenant(deps, "a"), await tenant(deps, "b")];
    await patchTenant(deps, ADMIN, b.kind === "tenant" ? b.tenantId : "", { weight: 2 });
    const tasks: Task[] = [];
    for (let i = 0; i < 4; i++) tasks.push(await submit(deps, a, `hold${i}`));
    for (let i = 0; i < 20; i++) tasks.push(await submit(deps, a, `a${i}`));
    for (let i = 0; i < 20; i++) tasks.push(await submit(deps, b, `b${i}`));
    const started = (await drain(deps, tasks)).filter((n) => !n.startsWith("hold"));
    // Of the first 15 started after the holders, B had two for each of A's.
    const first = started.slice(0, 15);
    expect(first.filter((n) => n.startsWith("b"))).toHaveLength(10);
  });

  it("still puts priority first: a later priority-9 task of the flooding tenant goes before the other's", async () => {
    const { deps } = memoryDeps(CONFIG);
    const [a, b] = [await tenant(deps, "a"), await tenant(deps, "b")];
    const tasks: Task[] = [];
    for (let i = 0; i < 50; i++) tasks.push(await submit(deps, a, `a${i}`));
    for (let i = 0; i < 5; i++) tasks.push(await submit(deps, b, `b${i}`));
    tasks.push(await submit(deps, a, "urgent", 9));
    const started = await drain(deps, tasks);
    expect(started.indexOf("urgent")).toBe(4);
  });
});
