import { describe, expect, it } from "vitest";
import { readyKeyOf } from "../../core/records.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { submitTask } from "../../core/tasks.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString();
const task = (priority: number, readySecond: number, aging?: number) => ({
  priority,
  ready_time: at(readySecond),
  create_time: at(readySecond),
  uuid: `u-${priority}-${readySecond}`,
  aging_seconds: aging,
});
const order = (...tasks: ReturnType<typeof task>[]) =>
  [...tasks].sort((a, b) => (readyKeyOf(a) < readyKeyOf(b) ? -1 : 1)).map((t) => t.uuid);

describe("the ready order", () => {
  it("is priority, then age, without aging", () => {
    expect(order(task(1, 0), task(5, 30), task(5, 10), task(9, 100))).toEqual([
      "u-9-100",
      "u-5-10",
      "u-5-30",
      "u-1-0",
    ]);
  });

  it("lets a task of priority p pass one of priority q that became ready more than (q − p) × aging_seconds after it", () => {
    const low = task(1, 0, 10);
    // 5 − 1 = 4 steps of 10 s: a priority-5 task ready up to 40 s later goes first, one ready later does not.
    expect(order(low, task(5, 39, 10))).toEqual(["u-5-39", "u-1-0"]);
    expect(order(low, task(5, 41, 10))).toEqual(["u-1-0", "u-5-41"]);
    // Equal priorities stay first come, first served.
    expect(order(task(5, 20, 10), task(5, 10, 10))).toEqual(["u-5-10", "u-5-20"]);
  });

  it("is kept by a pool's aging when its tasks are submitted", async () => {
    const { deps } = memoryDeps(`
pools:
  - { name: p, tool: claude, account: a, max_concurrency: 1, aging_seconds: 30 }
`);
    const { task: stored } = await submitTask(
      deps,
      ADMIN,
      submitTaskSchema.parse({ pool: "p", prompt: "x" }),
    );
    expect(stored.aging_seconds).toBe(30);
  });
});
