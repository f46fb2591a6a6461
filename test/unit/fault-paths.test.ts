/** Paths where a fault used to lose a task, a result or a pass, on in-memory ports whose methods fail. */
import { describe, expect, it } from "vitest";
import { setPoolPaused } from "../../core/controls.ts";
import { claimRun, type RunOutcome, settleRun } from "../../core/execution.ts";
import { DUE_SHARDS } from "../../core/names.ts";
import type { StateChange } from "../../core/ports.ts";
import { queuePlace } from "../../core/queues.ts";
import type { Task } from "../../core/records.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { cancelTask, getTask, listTaskEvents, submitTask } from "../../core/tasks.ts";
import { tick } from "../../core/tick.ts";
import { LIMIT_PAUSE_CAP_SECONDS } from "../../core/tool-accounts.ts";
import { parseSchedulerConfig } from "../../runtime/scheduler-config.ts";
import { failing } from "../support/failing.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const CONFIG = `
pools:
  - { name: p, tool: claude, account: acme, max_concurrency: 2, lease_seconds: 60 }
  - { name: q, tool: claude, account: acme, max_concurrency: 1 }
  - { name: wide, tool: codex, account: x, max_concurrency: 10000 }
`;

const failedWith = (error: string, fields: Partial<RunOutcome> = {}): RunOutcome => ({
  exitCode: 1,
  error,
  files: [],
  tail: "",
  durationMs: 10,
  ...fields,
});

async function submitAndClaim(deps: ReturnType<typeof memoryDeps>["deps"], body: object = {}) {
  const { task } = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "x", ...body }));
  const claim = await claimRun(deps, { task_uuid: task.uuid, run_id: task.run_id as string }, "w1");
  if (!claim.claimed) throw new Error(claim.reason);
  return claim.held;
}

describe("bounded texts", () => {
  it("keeps a huge CLI error to a few KB on the task, the run and the events", async () => {
    const { deps } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps, { max_attempts: 1 });
    const huge = `boom ${"é".repeat(500_000)}`;
    const task = await settleRun(deps, held, {
      kind: "finished",
      outcome: failedWith(huge, { output: huge }),
    });
    expect(task?.status).toBe("failed");
    const stored = await getTask(deps, ADMIN, held.task.uuid);
    expect(Buffer.byteLength(stored.error_message ?? "")).toBeLessThanOrEqual(2_100);
    expect(stored.error_message).toMatch(/^exit code 1: |^boom é+…\[truncated\]$/);
    expect(Buffer.byteLength(stored.result?.output ?? "")).toBeLessThanOrEqual(64_100);
    const events = (await listTaskEvents(deps, ADMIN, held.task.uuid, { size: 100 })).events;
    for (const event of events) expect(Buffer.byteLength(JSON.stringify(event))).toBeLessThan(4_000);
  });
});

describe("rate-limit resets", () => {
  it("never closes an account for longer than the cap, whatever reset a CLI names", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps);
    const resetAt = new Date("2099-01-01T00:00:00Z");
    await settleRun(deps, held, {
      kind: "finished",
      outcome: failedWith("usage limit", { rateLimit: { resetAt, source: "message" } }),
    });
    const capped = new Date(clock.now().getTime() + LIMIT_PAUSE_CAP_SECONDS * 1000).toISOString();
    for (const pool of ["p", "q"]) expect((await deps.counters.poolState(pool)).pausedUntil).toBe(capped);
    expect((await getTask(deps, ADMIN, held.task.uuid)).due_time).toBe(capped);
  });

  it("lets a later, sooner reset shorten a limit's pause, but never an admin's pause", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    await setPoolPaused(deps, ADMIN, "q", true);
    const later = new Date(clock.now().getTime() + 5 * 3600_000);
    const sooner = new Date(clock.now().getTime() + 3600_000);
    const held = [await submitAndClaim(deps), await submitAndClaim(deps)];
    for (const [i, resetAt] of [later, sooner].entries()) {
      const run = held[i] as (typeof held)[number];
      await settleRun(deps, run, {
        kind: "finished",
        outcome: failedWith("limit", { rateLimit: { resetAt, source: "message" } }),
      });
    }
    expect((await deps.counters.poolState("p")).pausedUntil).toBe(sooner.toISOString());
    expect((await deps.counters.poolState("q")).pausedUntil).toMatch(/^9999-/);
  });
});

describe("the tick under faults", () => {
  it("handles every other due task and pumps the pools when one task's handling throws", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const at = new Date(clock.now().getTime() + 60_000).toISOString();
    const delayed = [];
    for (let i = 0; i < 3; i++) {
      delayed.push(
        (
          await submitTask(
            deps,
            ADMIN,
            submitTaskSchema.parse({ pool: "wide", prompt: `d${i}`, scheduled_at: at }),
          )
        ).task,
      );
    }
    clock.advance(61_000);
    const bad = delayed[1]?.uuid;
    failing(
      deps.tasks,
      "commit",
      Number.POSITIVE_INFINITY,
      (change: StateChange) =>
        change.tasks?.some((t) => t.next.uuid === bad && t.next.status === "queued") ?? false,
    );
    const report = await tick(deps);
    expect(report.failed).toBe(1);
    const statuses = await Promise.all(delayed.map(async (t) => (await getTask(deps, ADMIN, t.uuid)).status));
    expect(statuses).toEqual(["dispatched", "scheduled", "dispatched"]);
  });

  it("fails the tasks of a pool that is no longer configured instead of throwing every tick", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const at = new Date(clock.now().getTime() + 60_000).toISOString();
    const { task } = await submitTask(
      deps,
      ADMIN,
      submitTaskSchema.parse({ pool: "q", prompt: "x", scheduled_at: at }),
    );
    const other = (
      await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "y", scheduled_at: at }))
    ).task;
    deps.config = parseSchedulerConfig(
      "pools:\n  - { name: p, tool: claude, account: acme, max_concurrency: 1, lease_seconds: 60 }\n",
    );
    clock.advance(61_000);
    const report = await tick(deps);
    expect(report).toMatchObject({ orphaned: 1, failed: 0, started: 1 });
    expect(await getTask(deps, ADMIN, task.uuid)).toMatchObject({
      status: "failed",
      error_message: "pool q is not in the configuration",
    });
    expect((await getTask(deps, ADMIN, other.uuid)).status).toBe("dispatched");
    expect((await tick(deps)).failed).toBe(0);
  });

  // Thousands of tasks through the in-memory store: seconds on a loaded machine, hence its timeout.
  it("works through more due tasks than one page of every shard in one tick", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const at = new Date(clock.now().getTime() + 60_000).toISOString();
    // Half again one page (100) per shard, on average.
    const count = DUE_SHARDS * 150;
    for (let i = 0; i < count; i++) {
      await submitTask(
        deps,
        ADMIN,
        submitTaskSchema.parse({ pool: "wide", prompt: `t${i}`, scheduled_at: at }),
      );
    }
    clock.advance(61_000);
    const report = await tick(deps);
    expect(report.started).toBe(count);
    expect(report.admitted).toBe(count);
  }, 30_000);
});

describe("a submission whose follow-up fails", () => {
  it("answers with the stored task when admitting it afterwards throws", async () => {
    const { deps } = memoryDeps(CONFIG);
    await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "q", prompt: "holds the slot" }));
    failing(deps.tasks, "readyTasks", 1);
    const outcome = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "q", prompt: "waits" }));
    expect(outcome).toMatchObject({ created: true, task: { status: "queued" } });
    expect((await getTask(deps, ADMIN, outcome.task.uuid)).status).toBe("queued");
  });

  it("answers with the stored task, without a place, when reading its place fails", async () => {
    const { deps } = memoryDeps(CONFIG);
    await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "q", prompt: "holds the slot" }));
    const outcome = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "q", prompt: "waits" }));
    expect(await queuePlace(deps, outcome.task)).toMatchObject({ position: 1 });
    failing(deps.tasks, "readyAhead", 1);
    expect(await queuePlace(deps, outcome.task)).toEqual({});
    failing(deps.tasks, "readyAhead", 1);
    const waiting = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "q", prompt: "waits too" }));
    expect(waiting).toMatchObject({ created: true, task: { status: "queued" }, place: {} });
    expect(waiting.task.predicted_wait).toBeUndefined();
  });
});

describe("recurring tasks on a late tick", () => {
  it("keep to their schedule from now, and stop at their end_time", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const end = new Date(clock.now().getTime() + 3 * 60_000 + 5_000).toISOString();
    const { task } = await submitTask(
      deps,
      ADMIN,
      submitTaskSchema.parse({ pool: "wide", prompt: "every 10 s", interval: 10, end_time: end }),
    );
    const fired: { at: string; next?: string }[] = [];
    let occurrence = (await getTask(deps, ADMIN, task.uuid)).occurrence;
    // One tick a minute, as on AWS; each occurrence runs to success before the next tick.
    for (let minute = 0; minute <= 6; minute++) {
      if (minute > 0) {
        clock.advance(60_000);
        await tick(deps);
      }
      const current = await getTask(deps, ADMIN, task.uuid);
      if (current.occurrence === occurrence && minute > 0) continue;
      occurrence = current.occurrence;
      fired.push({ at: clock.now().toISOString(), next: current.next_run_time });
      const claim = await claimRun(deps, { task_uuid: task.uuid, run_id: current.run_id as string }, "w");
      if (!claim.claimed) throw new Error(claim.reason);
      await settleRun(deps, claim.held, {
        kind: "finished",
        outcome: { exitCode: 0, files: [], tail: "", durationMs: 1 },
      });
    }
    // Fired at submission and at each of the next three ticks; never one behind, never past end_time.
    expect(fired).toHaveLength(4);
    for (const { at, next } of fired) {
      expect(at <= end).toBe(true);
      if (next !== undefined) expect(next > at).toBe(true);
    }
    expect((await getTask(deps, ADMIN, task.uuid)).status).toBe("completed");
  });
});

describe("a canceled running task", () => {
  it("keeps its slots while its worker may still run it, and the tick frees them when the lease runs out", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps, { concurrency_key: "k" });
    const next = (
      await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "y", concurrency_key: "k" }))
    ).task;
    expect(next.status).toBe("queued");
    await cancelTask(deps, ADMIN, held.task.uuid);
    await tick(deps);
    expect((await getTask(deps, ADMIN, next.uuid)).status).toBe("queued");
    expect((await deps.counters.poolState("p")).active).toBe(1);
    // The worker died with it: nobody says the process is gone, so the lease decides.
    clock.advance(61_000);
    const report = await tick(deps);
    expect(report.reclaimed).toBe(1);
    expect((await getTask(deps, ADMIN, next.uuid)).status).toBe("dispatched");
    expect(await getTask(deps, ADMIN, held.task.uuid)).toMatchObject({ status: "canceled" });
    expect((await deps.counters.poolState("p")).active).toBe(1);
  });
});

describe("busy concurrency keys", () => {
  it("never keep an admissible task waiting behind them while a slot is free", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    // A millisecond apart, as real submissions are: each one sorts behind the one before.
    const submit = async (body: object) => {
      clock.advance(1);
      return (await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "x", ...body })))
        .task;
    };
    const keyed = [];
    for (let i = 0; i < 100; i++) keyed.push(await submit({ concurrency_key: "k" }));
    const free = await submit({});
    expect(free.status).toBe("dispatched");
    expect((await deps.counters.poolState("p")).active).toBe(2);
    // The key's tasks run one at a time, in order, each woken by the end of the one before.
    for (let i = 0; i < 3; i++) {
      const running = await getTask(deps, ADMIN, (keyed[i] as Task).uuid);
      expect(running.status).toBe("dispatched");
      const claim = await claimRun(deps, { task_uuid: running.uuid, run_id: running.run_id as string }, "w");
      if (!claim.claimed) throw new Error(claim.reason);
      await settleRun(deps, claim.held, {
        kind: "finished",
        outcome: { exitCode: 0, files: [], tail: "", durationMs: 1 },
      });
      expect((await getTask(deps, ADMIN, (keyed[i + 1] as Task).uuid)).status).toBe("dispatched");
      expect((await getTask(deps, ADMIN, (keyed[i + 2] as Task).uuid)).status).toBe("queued");
    }
    expect(await deps.counters.keyState(`${free.tenant}#k`)).toEqual({ active: 1, waiting: 96 });
  });

  it("are woken by the tick when a wake-up was missed", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const submit = async (body: object) =>
      (await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "x", ...body }))).task;
    const first = await submit({ concurrency_key: "k" });
    const second = await submit({ concurrency_key: "k" });
    expect((await getTask(deps, ADMIN, second.uuid)).key_parked).toBe(true);
    // The first run ends, and its settle's wake-up fails twice (its try and its retry): it is lost.
    failing(deps.tasks, "keyWaitingTasks", 2, () => true, { error: () => new Error("index lag") });
    const claim = await claimRun(deps, { task_uuid: first.uuid, run_id: first.run_id as string }, "w");
    if (!claim.claimed) throw new Error(claim.reason);
    await settleRun(deps, claim.held, {
      kind: "finished",
      outcome: { exitCode: 0, files: [], tail: "", durationMs: 1 },
    });
    expect((await getTask(deps, ADMIN, second.uuid)).status).toBe("queued");
    clock.advance(61_000);
    expect((await tick(deps)).woken).toBe(1);
    expect((await getTask(deps, ADMIN, second.uuid)).status).toBe("dispatched");
  });
});
