import { describe, expect, it } from "vitest";
import { pauseTask, reorderTask, resumeTask } from "../../core/controls.ts";
import type { Deps } from "../../core/deps.ts";
import { claimRun, type HeldRun, settleRun } from "../../core/execution.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { listRuns } from "../../core/runs.ts";
import { getTask, submitTask } from "../../core/tasks.ts";
import { tick } from "../../core/tick.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

// Leases long enough that no test's clock jump reclaims a run.
const CONFIG = "pools:\n  - { name: p, tool: claude, account: a, max_concurrency: 5, lease_seconds: 3600 }\n";
const ok = { exitCode: 0, files: [], tail: "", durationMs: 10 };

const submit = (deps: Deps, body: object) =>
  submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "x", ...body })).then((o) => o.task);
const status = async (deps: Deps, uuid: string) => (await getTask(deps, ADMIN, uuid)).status;

/** Claims and finishes the task's current occurrence, as a worker would. */
async function runOccurrence(deps: Deps, uuid: string): Promise<void> {
  const held = await claim(deps, uuid);
  await settleRun(deps, held, { kind: "finished", outcome: ok });
}
async function claim(deps: Deps, uuid: string): Promise<HeldRun> {
  const task = await getTask(deps, ADMIN, uuid);
  const claimed = await claimRun(deps, { task_uuid: uuid, run_id: task.run_id as string }, "w");
  if (!claimed.claimed) throw new Error(claimed.reason);
  return claimed.held;
}

describe("recurring tasks", () => {
  it("runs an interval task `times` times, one occurrence per slot, then completes", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const task = await submit(deps, { interval: 60, times: 3 });
    // The first occurrence is due at once: fired and admitted by the submit itself.
    expect(task).toMatchObject({ status: "dispatched", occurrence: 1 });
    await runOccurrence(deps, task.uuid);
    expect(await getTask(deps, ADMIN, task.uuid)).toMatchObject({
      status: "scheduled",
      next_run_time: "2026-01-01T00:01:00.000Z",
      last_run_time: "2026-01-01T00:00:00.000Z",
    });
    for (const occurrence of [2, 3]) {
      clock.advance(60_000);
      await tick(deps);
      expect(await getTask(deps, ADMIN, task.uuid)).toMatchObject({
        status: "dispatched",
        occurrence,
        attempt: 1,
      });
      await runOccurrence(deps, task.uuid);
    }
    expect(await getTask(deps, ADMIN, task.uuid)).toMatchObject({ status: "completed", occurrence: 3 });
    const runs = await listRuns(deps, ADMIN, { task_id: task.uuid, size: 10 });
    expect(runs.instances.map((r) => [r.occurrence, r.attempt, r.status])).toEqual([
      [1, 1, "succeeded"],
      [2, 1, "succeeded"],
      [3, 1, "succeeded"],
    ]);
  });

  it("never fires one occurrence twice when two ticks run at the same moment", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const task = await submit(deps, { schedule: "*/5 * * * *", times: 10 });
    expect(task.status).toBe("dispatched");
    await runOccurrence(deps, task.uuid);
    clock.advance(5 * 60_000);
    const reports = await Promise.all([tick(deps), tick(deps), tick(deps)]);
    expect(reports.reduce((n, r) => n + r.fired, 0)).toBe(1);
    const runs = await listRuns(deps, ADMIN, { task_id: task.uuid, size: 10 });
    expect(runs.instances.map((r) => r.occurrence)).toEqual([1, 2]);
  });

  it("records a skipped run when an occurrence falls due while the last one runs (overlap skip)", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const task = await submit(deps, { interval: 60 });
    const held = await claim(deps, task.uuid);
    clock.advance(60_000);
    expect((await tick(deps)).fired).toBe(1);
    const runs = await listRuns(deps, ADMIN, { task_id: task.uuid, size: 10 });
    expect(runs.instances.map((r) => [r.occurrence, r.status])).toEqual([
      [1, "running"],
      [2, "skipped"],
    ]);
    await settleRun(deps, held, { kind: "finished", outcome: ok });
    expect(await getTask(deps, ADMIN, task.uuid)).toMatchObject({
      status: "scheduled",
      next_run_time: "2026-01-01T00:02:00.000Z",
    });
  });

  it("keeps one occurrence waiting behind the running one (overlap queue)", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const task = await submit(deps, { interval: 60, overlap: "queue" });
    const held = await claim(deps, task.uuid);
    clock.advance(150_000); // two slots pass
    await tick(deps);
    await tick(deps);
    await settleRun(deps, held, { kind: "finished", outcome: ok });
    await tick(deps);
    expect(await getTask(deps, ADMIN, task.uuid)).toMatchObject({ status: "dispatched", occurrence: 2 });
  });

  it("pauses: nothing fires; resumes with one catch-up after a long pause", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const task = await submit(deps, { interval: 60 });
    await runOccurrence(deps, task.uuid);
    await pauseTask(deps, ADMIN, task.uuid);
    expect(await status(deps, task.uuid)).toBe("paused");
    clock.advance(3_600_000);
    expect((await tick(deps)).fired).toBe(0);

    const resumed = await resumeTask(deps, ADMIN, task.uuid);
    expect(resumed).toMatchObject({ status: "scheduled", next_run_time: "2026-01-01T01:00:00.000Z" });
    await tick(deps);
    expect(await getTask(deps, ADMIN, task.uuid)).toMatchObject({ status: "dispatched", occurrence: 2 });
    await runOccurrence(deps, task.uuid);
    // Back on the anchored cadence: the next slot after the catch-up.
    expect((await getTask(deps, ADMIN, task.uuid)).next_run_time).toBe("2026-01-01T01:01:00.000Z");
  });

  it("lets a running occurrence finish when paused, then holds the task", async () => {
    const { deps } = memoryDeps(CONFIG);
    const task = await submit(deps, { interval: 60 });
    await pauseTask(deps, ADMIN, task.uuid);
    expect(await status(deps, task.uuid)).toBe("dispatched");
    await runOccurrence(deps, task.uuid);
    expect(await status(deps, task.uuid)).toBe("paused");
  });

  it("reorders the next occurrence, keeps the cadence, and refuses while it runs", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const task = await submit(deps, { interval: 600 });
    await expect(reorderTask(deps, ADMIN, task.uuid, -60)).rejects.toThrow(/dispatched/);
    await runOccurrence(deps, task.uuid);
    const moved = await reorderTask(deps, ADMIN, task.uuid, -300);
    expect(moved.next_run_time).toBe("2026-01-01T00:05:00.000Z");
    clock.advance(300_000);
    await tick(deps);
    await runOccurrence(deps, task.uuid);
    // The original 00:10 slot is not fired again: the next is 00:20.
    expect((await getTask(deps, ADMIN, task.uuid)).next_run_time).toBe("2026-01-01T00:20:00.000Z");
  });

  it("refuses bad recurrences naming the field", async () => {
    const { deps } = memoryDeps(CONFIG);
    const cases: [object, string][] = [
      [{ schedule: "61 * * * *" }, "schedule"],
      [{ schedule: "* * * *" }, "schedule"],
      [{ schedule: "0 * * * *", timezone: "Mars/Olympus" }, "timezone"],
      [{ interval: 60, valid_time_range: [17, 9] }, "valid_time_range"],
      [{ interval: 60, end_time: "2020-01-01T00:00:00Z" }, "end_time"],
      [{ interval: 60, schedule: "0 * * * *" }, "interval"],
      [{ times: 3 }, "times"],
      [{ overlap: "queue" }, "overlap"],
    ];
    for (const [body, field] of cases) {
      await expect(submit(deps, body), JSON.stringify(body)).rejects.toMatchObject({ code: "1001", field });
    }
  });
});
