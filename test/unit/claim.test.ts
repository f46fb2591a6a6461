import { describe, expect, it, vi } from "vitest";
import { decodeDispatch, type QueueMessageBody } from "../../core/admission.ts";
import { claimRun } from "../../core/execution.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { cancelTask, getTask, mergeTaskTags, submitTask } from "../../core/tasks.ts";
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

  it("claims from the dispatch message's snapshot without reading task or run", async () => {
    const { deps, queue } = memoryDeps(CONFIG);
    const { task } = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "x" }));
    const [body] = queue.bodies("p");
    const message = decodeDispatch(body as string) as QueueMessageBody;
    expect(message.snapshot?.task).toEqual(await deps.tasks.getTask(task.uuid));
    const reads = [vi.spyOn(deps.tasks, "getTask"), vi.spyOn(deps.tasks, "getRun")];
    const claim = await claimRun(deps, message, "w1");
    expect(claim).toMatchObject({ claimed: true, held: { task: { status: "running", prompt: "x" } } });
    for (const read of reads) expect(read).not.toHaveBeenCalled();
    expect((await getTask(deps, ADMIN, task.uuid)).status).toBe("running");
  });

  it("claims from the stored records when the snapshot is no longer current", async () => {
    const { deps, queue } = memoryDeps(CONFIG);
    const { task } = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "x" }));
    const message = decodeDispatch(queue.bodies("p")[0] as string) as QueueMessageBody;
    await mergeTaskTags(deps, ADMIN, task.uuid, { team: "a" });
    const claim = await claimRun(deps, message, "w1");
    expect(claim).toMatchObject({
      claimed: true,
      held: { task: { status: "running", tags: { team: "a" } } },
    });
    expect(await getTask(deps, ADMIN, task.uuid)).toMatchObject({ status: "running", tags: { team: "a" } });
  });

  it("refuses the message of a run canceled before any worker took it", async () => {
    const { deps, queue } = memoryDeps(CONFIG);
    const { task } = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "x" }));
    await cancelTask(deps, ADMIN, task.uuid);
    const reason = "stale: task is canceled, run is canceled";
    const claim = await claimRun(deps, { task_uuid: task.uuid, run_id: task.run_id as string }, "w1");
    expect(claim).toEqual({ claimed: false, reason });
    // The message as sent carries the snapshot of the dispatched task: its claim fails, reads, and refuses.
    const message = decodeDispatch(queue.bodies("p")[0] as string) as QueueMessageBody;
    expect(await claimRun(deps, message, "w1")).toEqual({ claimed: false, reason });
    expect((await deps.counters.poolState("p")).active).toBe(0);
  });
});

describe("dispatch messages", () => {
  it("read back what was sent, and refuse what is not a dispatch", () => {
    expect(decodeDispatch('{"run_id":"r1","task_uuid":"t1","pool":"p"}')).toEqual({
      run_id: "r1",
      task_uuid: "t1",
      pool: "p",
    });
    for (const body of ["", "{nope", "[]", '{"run_id":"r1"}', '{"run_id":"","task_uuid":"t","pool":"p"}'])
      expect(decodeDispatch(body)).toBeUndefined();
    const badSnapshot = '{"run_id":"r1","task_uuid":"t1","pool":"p","snapshot":{"task":{}}}';
    expect(decodeDispatch(badSnapshot)).toBeUndefined();
  });
});
