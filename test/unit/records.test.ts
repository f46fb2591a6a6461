import { describe, expect, it } from "vitest";
import * as z from "zod";
import { pauseTask, reorderTask, resumeTask } from "../../core/controls.ts";
import { claimRun, heartbeat, type RunOutcome, settleRun } from "../../core/execution.ts";
import { runSchema, runViewSchema, type Task, taskSchema, taskViewSchema } from "../../core/records.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { listRuns } from "../../core/runs.ts";
import { getTask, listTasks, submitTask } from "../../core/tasks.ts";
import { tick } from "../../core/tick.ts";
import { runView, taskView } from "../../core/views.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const CONFIG = `
pools:
  - { name: p, tool: claude, account: acme, max_concurrency: 1, lease_seconds: 60, retry: { base_seconds: 30, max_seconds: 300 } }
`;

const outcome = (exitCode: number): RunOutcome => ({
  exitCode,
  output: "done",
  tokens: { input: 10, output: 5, total: 15 },
  cost_usd: 0.01,
  files: [],
  tail: "done\n",
  durationMs: 100,
  ...(exitCode !== 0 && { error: `exit code ${exitCode}` }),
});

/** Tasks and runs through a failed attempt, a retry, a success, a reorder, and a paused recurring task. */
async function storedRecords() {
  const { deps, clock } = memoryDeps(CONFIG);
  const submit = (body: object) =>
    submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "x", name: "n", ...body }));
  const { task } = await submit({
    tags: { team: "a" },
    concurrency_key: "k",
    callback: "https://example.com/h",
  });
  const waiting = (await submit({ priority: 2, scheduled_at: "2026-01-01T01:00:00Z" })).task;
  await reorderTask(deps, ADMIN, waiting.uuid, 60);
  const recurring = (await submit({ interval: 600, times: 3 })).task;
  await pauseTask(deps, ADMIN, recurring.uuid);
  await resumeTask(deps, ADMIN, recurring.uuid);
  await pauseTask(deps, ADMIN, recurring.uuid);

  const run = async (uuid: string, exitCode: number) => {
    const current = await getTask(deps, ADMIN, uuid);
    const claim = await claimRun(deps, { task_uuid: uuid, run_id: current.run_id as string }, "w1");
    if (!claim.claimed) throw new Error(claim.reason);
    const beat = await heartbeat(deps, claim.held);
    if (!("held" in beat)) throw new Error(beat.stop);
    await settleRun(deps, beat.held, { kind: "finished", outcome: outcome(exitCode) });
  };
  await run(task.uuid, 2);
  clock.advance(301_000);
  await tick(deps);
  await run(task.uuid, 0);

  const tasks = (await listTasks(deps, ADMIN, { size: 100 })).tasks;
  const runs = (await listRuns(deps, ADMIN, { size: 20, task_id: task.uuid })).instances;
  return { tasks, runs };
}

const bookkeeping = (schema: z.ZodObject, view: z.ZodObject) =>
  Object.keys(schema.shape).filter((name) => !Object.hasOwn(view.shape, name));

describe("stored records", () => {
  it("match their schemas exactly: no field is written that a schema does not name", async () => {
    const { tasks, runs } = await storedRecords();
    expect(tasks).toHaveLength(3);
    expect(runs.map((r) => r.status)).toEqual(["failed", "succeeded"]);
    for (const task of tasks) expect(() => z.strictObject(taskSchema.shape).parse(task)).not.toThrow();
    for (const run of runs) expect(() => z.strictObject(runSchema.shape).parse(run)).not.toThrow();
  });

  it("show a client every visible field and none of the bookkeeping", async () => {
    const { tasks, runs } = await storedRecords();
    const hidden = bookkeeping(taskSchema, taskViewSchema);
    expect(hidden).toEqual(expect.arrayContaining(["version", "due_time", "ready_time", "run_count"]));
    for (const task of tasks as Task[]) {
      const view = taskView(task);
      expect(Object.keys(view).filter((name) => hidden.includes(name))).toEqual([]);
      expect(view).toEqual(Object.fromEntries(Object.entries(task).filter(([n]) => !hidden.includes(n))));
    }
    expect(bookkeeping(runSchema, runViewSchema)).toEqual(["version", "log_inline"]);
    for (const run of runs) expect(runView(run)).not.toHaveProperty("version");
    expect(runView(runs[0] as (typeof runs)[number])).toMatchObject({
      status: "failed",
      error: "exit code 2",
    });
  });
});
