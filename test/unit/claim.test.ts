import { describe, expect, it } from "vitest";
import { claimRun } from "../../core/execution.ts";
import { submitTaskSchema } from "../../core/schemas.ts";
import { cancelTask, getTask, submitTask } from "../../core/tasks.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const CONFIG = "pools:\n  - { name: p, tool: claude, account: a, max_concurrency: 1, lease_seconds: 90 }\n";

describe("claiming a run", () => {
  it("moves task and run to running with a lease, once", async () => {
    const { deps } = memoryDeps(CONFIG);
    const { task } = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "x" }));
    const message = { task_uuid: task.uuid, run_id: task.run_id as string };
    const claim = await claimRun(deps, message, "w1");
    expect(claim).toMatchObject({
      claimed: true,
      held: {
        run: { status: "running", worker: "w1" },
        task: { lease_expires_at: "2026-01-01T00:01:30.000Z" },
      },
    });
    expect((await getTask(deps, ADMIN, task.uuid)).status).toBe("running");
    // The same message delivered twice: the second is stale.
    expect(await claimRun(deps, message, "w2")).toMatchObject({ claimed: false });
  });

  it("refuses the message of a run canceled before any worker took it", async () => {
    const { deps } = memoryDeps(CONFIG);
    const { task } = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "x" }));
    await cancelTask(deps, ADMIN, task.uuid);
    const claim = await claimRun(deps, { task_uuid: task.uuid, run_id: task.run_id as string }, "w1");
    expect(claim).toEqual({ claimed: false, reason: "stale: task is canceled, run is canceled" });
    expect((await deps.store.poolState("p")).active).toBe(0);
  });
});
