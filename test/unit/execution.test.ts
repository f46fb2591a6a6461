import { describe, expect, it } from "vitest";
import type { Deps } from "../../core/deps.ts";
import {
  claimRun,
  type HeldRun,
  heartbeat,
  logMissedItsRun,
  logStaysOnRun,
  RATE_LIMIT_RETRY_CAP,
  type RunOutcome,
  retryDelaySeconds,
  settleRun,
} from "../../core/execution.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { listRuns } from "../../core/runs.ts";
import { cancelTask, getTask, releaseHeldSlot, submitTask } from "../../core/tasks.ts";
import { tick } from "../../core/tick.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const CONFIG = `
pools:
  - { name: p, tool: claude, account: acme, max_concurrency: 1, lease_seconds: 60, retry: { base_seconds: 30, max_seconds: 300 } }
  - { name: p2, tool: claude, account: acme, max_concurrency: 1 }
  - { name: other, tool: claude, account: zeta, max_concurrency: 1 }
`;

const ok: RunOutcome = {
  exitCode: 0,
  output: "done",
  tokens: { input: 10, output: 5, total: 15 },
  cost_usd: 0.01,
  files: ["out/report.md"],
  tail: "done\n",
  durationMs: 1200,
};
const failed = (fields: Partial<RunOutcome> = {}): RunOutcome => ({
  exitCode: 2,
  error: "exit code 2: boom",
  files: [],
  tail: "boom\n",
  durationMs: 50,
  ...fields,
});

async function submitAndClaim(deps: Deps, body: object = {}): Promise<HeldRun> {
  const { task } = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "x", ...body }));
  const claim = await claimRun(deps, { task_uuid: task.uuid, run_id: task.run_id as string }, "w1");
  if (!claim.claimed) throw new Error(claim.reason);
  return claim.held;
}

/** Claims whatever the tick dispatched for the task next. */
async function claimNext(deps: Deps, uuid: string): Promise<HeldRun> {
  const task = await getTask(deps, ADMIN, uuid);
  const claim = await claimRun(deps, { task_uuid: uuid, run_id: task.run_id as string }, "w2");
  if (!claim.claimed) throw new Error(claim.reason);
  return claim.held;
}

describe("retry backoff", () => {
  it("doubles from base up to max, with the upper half jittered", () => {
    const retry = { base_seconds: 30, max_seconds: 300 };
    expect([1, 2, 3, 4, 5, 6].map((a) => retryDelaySeconds(retry, a, () => 1))).toEqual([
      30, 60, 120, 240, 300, 300,
    ]);
    expect(retryDelaySeconds(retry, 1, () => 0)).toBe(15);
  });
});

describe("settling a run", () => {
  it("records a success on task and run, frees the slot and admits the next task", async () => {
    const { deps } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps);
    const waiting = (await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "y" }))).task;
    expect(waiting.status).toBe("queued");

    const task = await settleRun(deps, held, { kind: "finished", outcome: ok });
    expect(task).toMatchObject({
      status: "succeeded",
      result: { exit_code: 0, output: "done", files: ["out/report.md"], cost_usd: 0.01 },
    });
    const runs = await listRuns(deps, ADMIN, { task_id: held.task.uuid, size: 10 });
    expect(runs.instances[0]).toMatchObject({
      status: "succeeded",
      exit_code: 0,
      latency_ms: 1200,
      output_tail: "done\n",
    });
    expect((await getTask(deps, ADMIN, waiting.uuid)).status).toBe("dispatched");
  });

  it("reads no ready queue after a settle when no task waits, and admits again once tasks wait", async () => {
    const { deps } = memoryDeps(CONFIG);
    let readyReads = 0;
    const readyTasks = deps.tasks.readyTasks.bind(deps.tasks);
    deps.tasks.readyTasks = (...args) => {
      readyReads++;
      return readyTasks(...args);
    };
    const settleOk = async (held: HeldRun) => {
      readyReads = 0;
      await settleRun(deps, held, { kind: "finished", outcome: ok });
      return readyReads;
    };
    expect(await settleOk(await submitAndClaim(deps))).toBe(0);
    expect((await deps.counters.poolState("p")).active).toBe(0);

    // Whatever this process guessed, a task that waits is admitted as the slot frees.
    for (let round = 0; round < 3; round++) {
      const held = await submitAndClaim(deps);
      const waiting = (await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "y" })))
        .task;
      expect(await settleOk(held)).toBeGreaterThan(0);
      expect((await getTask(deps, ADMIN, waiting.uuid)).status).toBe("dispatched");
      const next = await claimNext(deps, waiting.uuid);
      await settleRun(deps, next, { kind: "finished", outcome: ok });
    }
    expect(await settleOk(await submitAndClaim(deps))).toBe(0);
  });

  it("queues a submission behind a full pool without an admission pass, and admits it as the slot frees", async () => {
    const { deps } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps);
    let readyReads = 0;
    const readyTasks = deps.tasks.readyTasks.bind(deps.tasks);
    deps.tasks.readyTasks = (...args) => {
      readyReads++;
      return readyTasks(...args);
    };
    const waiting = (await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "y" }))).task;
    expect([waiting.status, readyReads]).toEqual(["queued", 0]);
    expect(await deps.counters.poolState("p")).toMatchObject({ active: 1, queued: 1 });

    await settleRun(deps, held, { kind: "finished", outcome: ok });
    expect((await getTask(deps, ADMIN, waiting.uuid)).status).toBe("dispatched");
  });

  it("wakes a task of the same concurrency key that waits in another pool as the key frees", async () => {
    const { deps } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps, { concurrency_key: "repo-1" });
    const body = { pool: "p2", prompt: "y", concurrency_key: "repo-1" };
    const waiting = (await submitTask(deps, ADMIN, submitTaskSchema.parse(body))).task;
    expect(await getTask(deps, ADMIN, waiting.uuid)).toMatchObject({ status: "queued", key_parked: true });

    await settleRun(deps, held, { kind: "finished", outcome: ok });
    expect((await getTask(deps, ADMIN, waiting.uuid)).status).toBe("dispatched");
  });

  it("retries a failure after the backoff as attempt 2, then succeeds: two runs", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps);
    const retried = await settleRun(deps, held, { kind: "finished", outcome: failed() });
    expect(retried).toMatchObject({ status: "scheduled", attempt: 1, error_message: "exit code 2: boom" });
    expect((await deps.counters.poolState("p")).active).toBe(0);

    clock.advance(22_000); // backoff is 15 + 0.5 · 15 = 22.5 s
    await tick(deps);
    expect((await getTask(deps, ADMIN, held.task.uuid)).status).toBe("scheduled");
    clock.advance(1000);
    await tick(deps);
    const second = await claimNext(deps, held.task.uuid);
    expect(second.task.attempt).toBe(2);
    await settleRun(deps, second, { kind: "finished", outcome: ok });

    const runs = await listRuns(deps, ADMIN, { task_id: held.task.uuid, size: 10 });
    expect(runs.instances.map((r) => [r.attempt, r.status])).toEqual([
      [1, "failed"],
      [2, "succeeded"],
    ]);
    expect((await getTask(deps, ADMIN, held.task.uuid)).status).toBe("succeeded");
  });

  it("fails for good when attempts are used up, with the error", async () => {
    const { deps } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps, { max_attempts: 1 });
    const task = await settleRun(deps, held, {
      kind: "finished",
      outcome: failed({ error: "timed out after 10 s" }),
    });
    expect(task).toMatchObject({
      status: "failed",
      error_message: "timed out after 10 s",
      end_time: expect.any(String),
    });
  });

  it("fails at once, with attempts left, when the job cannot run on the worker at all", async () => {
    const { deps } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps, { max_attempts: 3 });
    const outcome = failed({
      exitCode: null,
      error: "claude is not installed on this worker",
      permanent: true,
    });
    const task = await settleRun(deps, held, { kind: "finished", outcome });
    expect(task).toMatchObject({
      status: "failed",
      attempt: 1,
      error_message: "claude is not installed on this worker",
    });
  });

  it("retries a rate limit without using an attempt and pauses the account's pools until the reset", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps, { max_attempts: 1 });
    const resetAt = new Date(clock.now().getTime() + 3_600_000);
    const task = await settleRun(deps, held, {
      kind: "finished",
      outcome: failed({
        exitCode: 1,
        error: "usage limit reached",
        rateLimit: { resetAt, source: "message" },
      }),
    });
    expect(task).toMatchObject({ status: "scheduled", attempt: 0, rate_limit_retries: 1 });
    expect(task?.next_run_time).toBe(resetAt.toISOString());
    expect((await deps.counters.poolState("p")).pausedUntil).toBe(resetAt.toISOString());
    expect((await deps.counters.poolState("p2")).pausedUntil).toBe(resetAt.toISOString());
    expect((await deps.counters.poolState("other")).pausedUntil).toBeUndefined();

    // Paused pools admit nothing; a tool-only task goes to the other account.
    const blocked = (await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "z" }))).task;
    expect(blocked.status).toBe("queued");
    const moved = (await submitTask(deps, ADMIN, submitTaskSchema.parse({ tool: "claude", prompt: "z" })))
      .task;
    expect(moved.pool).toBe("other");
  });

  it("counts rate limits as failures past the cap", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    let held = await submitAndClaim(deps, { max_attempts: 1 });
    for (let retry = 1; retry <= RATE_LIMIT_RETRY_CAP; retry++) {
      const task = await settleRun(deps, held, {
        kind: "finished",
        outcome: failed({ rateLimit: { source: "message" } }),
      });
      expect(task).toMatchObject({ status: "scheduled", rate_limit_retries: retry, attempt: 0 });
      clock.advance(301_000);
      await tick(deps);
      held = await claimNext(deps, held.task.uuid);
    }
    const task = await settleRun(deps, held, {
      kind: "finished",
      outcome: failed({ rateLimit: { source: "message" } }),
    });
    expect(task?.status).toBe("failed");
  });

  it("hands a released run back to the queue with its attempt returned", async () => {
    const { deps } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps);
    const task = await settleRun(deps, held, { kind: "released", reason: "worker stopping" });
    // Released, then admitted again at once by the same settle (the pool had room).
    expect(task).toMatchObject({ status: "queued", attempt: 0 });
    const again = await getTask(deps, ADMIN, held.task.uuid);
    expect(again).toMatchObject({ status: "dispatched", attempt: 1 });
    const runs = await listRuns(deps, ADMIN, { task_id: held.task.uuid, size: 10 });
    expect(runs.instances.map((r) => r.status)).toEqual(["lost", "dispatched"]);
  });
});

describe("leases", () => {
  it("extends the lease on heartbeat, and the tick leaves a live run alone", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    let held = await submitAndClaim(deps);
    for (let i = 0; i < 3; i++) {
      clock.advance(30_000);
      const beat = await heartbeat(deps, held);
      if (!("held" in beat)) throw new Error("lost the lease");
      held = beat.held;
      await tick(deps);
    }
    expect((await getTask(deps, ADMIN, held.task.uuid)).status).toBe("running");
  });

  it("reclaims an expired lease: the run is lost, the task retried, and the late worker learns it", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps);
    clock.advance(61_000);
    expect((await tick(deps)).reclaimed).toBe(1);
    const task = await getTask(deps, ADMIN, held.task.uuid);
    expect(task).toMatchObject({
      status: "scheduled",
      error_message: expect.stringContaining("lease expired"),
    });
    expect(await heartbeat(deps, held)).toEqual({ stop: "lost" });
    expect(await settleRun(deps, held, { kind: "finished", outcome: ok })).toBeUndefined();
    expect((await deps.counters.poolState("p")).active).toBe(0);
  });

  it("tells the worker to stop when the task is canceled, drops its late result, and frees the slot once it is gone", async () => {
    const { deps } = memoryDeps(CONFIG);
    const held = await submitAndClaim(deps);
    await cancelTask(deps, ADMIN, held.task.uuid);
    expect(await heartbeat(deps, held)).toEqual({ stop: "canceled" });
    expect(await settleRun(deps, held, { kind: "finished", outcome: ok })).toBeUndefined();
    expect((await getTask(deps, ADMIN, held.task.uuid)).status).toBe("canceled");
    // The slot is the run's until its worker says the process is gone.
    expect((await deps.counters.poolState("p")).active).toBe(1);
    expect(await releaseHeldSlot(deps, held.task.uuid, held.run.run_id)).toBe(true);
    expect(await releaseHeldSlot(deps, held.task.uuid, held.run.run_id)).toBe(false);
    expect((await deps.counters.poolState("p")).active).toBe(0);
  });
});

describe("where a run's log is kept", () => {
  it("stays on the run record when short and the worker finished the run itself", () => {
    expect(logStaysOnRun("x".repeat(4000), false)).toBe(true);
    expect(logStaysOnRun("x".repeat(4001), false)).toBe(false);
    expect(logStaysOnRun("short", true)).toBe(false);
  });

  it("goes to S3 after all when the run record did not take it", () => {
    const finished = { kind: "finished", outcome: ok } as const;
    expect(logMissedItsRun(true, finished)).toBe(false);
    expect(logMissedItsRun(false, finished)).toBe(true);
    expect(logMissedItsRun(true, { kind: "released", reason: "stopping" })).toBe(true);
  });
});
