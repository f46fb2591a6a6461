/** The worker loop under failing AWS calls: on in-memory ports whose methods fail, with the fake CLIs. */
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { directBackend } from "../../containers/worker/backend.ts";
import { runWorker } from "../../containers/worker/worker.ts";
import { type Deps, systemClock } from "../../core/deps.ts";
import type { StateChange } from "../../core/ports.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { listRuns } from "../../core/runs.ts";
import { cancelTask, getTask, listTaskEvents, submitTask } from "../../core/tasks.ts";
import { tick } from "../../core/tick.ts";
import { failing } from "../support/failing.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";
import { alive, waitFor } from "../support/wait.ts";

const CONFIG = "pools:\n  - { name: p, tool: claude, account: a, max_concurrency: 2, lease_seconds: 10 }\n";

const originalPath = process.env.PATH;
beforeEach(() => {
  process.env.PATH = FAKE_CLI_PATH;
});
afterEach(() => {
  process.env.PATH = originalPath;
});

function start(clock: Deps["clock"] = systemClock, log: Deps["log"] = memoryDeps(CONFIG).deps.log) {
  const deps = { ...memoryDeps(CONFIG).deps, clock, log };
  const stopping = new AbortController();
  const loop = runWorker(directBackend(deps, { pool: "p", workerId: "w-faults", slots: 2 }), {
    waitSeconds: 0.1,
    credentials: {},
    stopping: stopping.signal,
    drainSeconds: 1,
    checkpointSeconds: 120,
  });
  const stop = async () => {
    stopping.abort();
    await loop;
  };
  return { deps, stop, loop };
}

const submit = async (deps: ReturnType<typeof start>["deps"], prompt: string, fields: object = {}) =>
  (await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt, ...fields }))).task;

/** The settle: the one change that gives a pool slot back. A heartbeat: a task write with nothing else. */
const isSettle = (change: StateChange) => change.release !== undefined;
const isHeartbeat = (change: StateChange) =>
  change.tasks?.length === 1 && !change.runs && !change.acquire && !change.release;
const isClaim = (change: StateChange) => change.runs?.[0]?.next.status === "running";

describe("worker under faults", () => {
  it("records a finished run's outcome once, however often the settle fails first", async () => {
    const { deps, stop } = start();
    const settles = failing(deps.tasks, "commit", 3, isSettle);
    const task = await submit(deps, "[write:out/a.txt=made] finish", { output_files: ["out/a.txt"] });
    const done = await waitFor(
      () => getTask(deps, ADMIN, task.uuid),
      (t) => t.status === "succeeded",
    );
    await stop();
    expect(settles.injected).toBe(3);
    expect(done.status).toBe("succeeded");
    const runs = (await listRuns(deps, ADMIN, { size: 20, task_id: task.uuid })).instances;
    expect(runs.map((r) => r.status)).toEqual(["succeeded"]);
    const events = (await listTaskEvents(deps, ADMIN, task.uuid, { size: 100 })).events.map((e) => e.type);
    expect(events.filter((type) => type === "run.succeeded")).toHaveLength(1);
    // The run's files are under its own run.
    expect(done.result?.run_id).toBe(runs[0]?.run_id);
    expect(done.result?.files).toEqual(["out/a.txt"]);
  });

  it("records it once when a settle took effect but its answer was lost", async () => {
    const { deps, stop } = start();
    const settles = failing(deps.tasks, "commit", 1, isSettle, { applied: true });
    const task = await submit(deps, "finish");
    const done = await waitFor(
      () => getTask(deps, ADMIN, task.uuid),
      (t) => t.status === "succeeded",
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await stop();
    expect(settles.injected).toBe(1);
    expect(done.status).toBe("succeeded");
    const runs = (await listRuns(deps, ADMIN, { size: 20, task_id: task.uuid })).instances;
    expect(runs.map((r) => r.status)).toEqual(["succeeded"]);
    expect(await deps.counters.poolState("p")).toMatchObject({ active: 0, queued: 0 });
  });

  it("kills its job before the lease runs out when it cannot renew the lease", async () => {
    const { deps, stop } = start();
    failing(deps.tasks, "commit", Number.POSITIVE_INFINITY, isHeartbeat);
    const pidFile = join(await mkdtemp(join(tmpdir(), "fence-")), "pid");
    const task = await submit(deps, `[pid-file:${pidFile}] [sleep:60] long job`);
    const running = await waitFor(
      () => getTask(deps, ADMIN, task.uuid),
      (t) => t.status === "running",
    );
    const pid = Number(
      await waitFor(async () => readFileSync(pidFile, "utf8").trim(), Boolean).catch(() => "0"),
    );
    expect(pid).toBeGreaterThan(0);
    const leaseEnds = Date.parse(running.lease_expires_at as string);
    await waitFor(
      async () => alive(pid),
      (up) => !up,
      15_000,
    );
    const killedAt = Date.now();
    expect(alive(pid)).toBe(false);
    expect(killedAt).toBeLessThan(leaseEnds);
    // The worker does not settle a run it may no longer hold: the tick reclaims it once the lease is out.
    expect((await getTask(deps, ADMIN, task.uuid)).status).toBe("running");
    await new Promise((resolve) => setTimeout(resolve, leaseEnds - Date.now() + 100));
    await stop();
    expect((await tick(deps)).reclaimed).toBe(1);
    const runs = (await listRuns(deps, ADMIN, { size: 20, task_id: task.uuid })).instances;
    expect(runs[0]).toMatchObject({ status: "lost" });
  }, 30_000);

  it("survives a failed claim and goes on with the next message", async () => {
    const { deps, stop, loop } = start();
    const claims = failing(deps.tasks, "commit", 1, isClaim);
    let crashed: unknown;
    loop.catch((err: unknown) => {
      crashed = err;
    });
    const first = await submit(deps, "first");
    await waitFor(
      async () => claims.injected,
      (n) => n === 1,
    );
    const second = await submit(deps, "second");
    const done = await waitFor(
      () => getTask(deps, ADMIN, second.uuid),
      (t) => t.status === "succeeded",
    );
    expect(crashed).toBeUndefined();
    expect(done.status).toBe("succeeded");
    // The first run's message comes back after its visibility timeout; until then the task waits dispatched.
    expect((await getTask(deps, ADMIN, first.uuid)).status).toBe("dispatched");
    await stop();
  });

  it("keeps a canceled task's key until its process is gone: the next task of the key waits for it", async () => {
    const { deps, stop } = start();
    const pidFile = join(await mkdtemp(join(tmpdir(), "cancel-")), "pid");
    const first = await submit(deps, `[pid-file:${pidFile}] [sleep:30] first`, { concurrency_key: "k" });
    await waitFor(
      () => getTask(deps, ADMIN, first.uuid),
      (t) => t.status === "running",
    );
    const pid = Number(
      await waitFor(async () => readFileSync(pidFile, "utf8").trim(), Boolean).catch(() => "0"),
    );
    const second = await submit(deps, "second", { concurrency_key: "k" });
    expect(second.status).toBe("queued");
    await cancelTask(deps, ADMIN, first.uuid);
    expect((await getTask(deps, ADMIN, first.uuid)).status).toBe("canceled");
    // Until the first job's process is gone, the key stays busy.
    while (alive(pid)) {
      expect((await getTask(deps, ADMIN, second.uuid)).status).toBe("queued");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const done = await waitFor(
      () => getTask(deps, ADMIN, second.uuid),
      (t) => t.status === "succeeded",
    );
    expect(done.status).toBe("succeeded");
    expect(await getTask(deps, ADMIN, first.uuid)).not.toHaveProperty("holds_slot");
    await stop();
    expect(await deps.counters.poolState("p")).toMatchObject({ active: 0 });
  }, 30_000);

  it("gives up a settle the store keeps refusing once the lease is long gone, and leaves the run to the tick", async () => {
    let offsetMs = 0;
    const clock = { now: () => new Date(Date.now() + offsetMs) };
    const errors: string[] = [];
    const log = {
      info: () => undefined,
      warn: () => undefined,
      error: (message: string) => {
        errors.push(message);
      },
    };
    const { deps, stop } = start(clock, log);
    let refusing = true;
    const settles = failing(
      deps.tasks,
      "commit",
      Number.POSITIVE_INFINITY,
      (change: StateChange) => refusing && isSettle(change),
    );
    const task = await submit(deps, "refused");
    await waitFor(
      async () => settles.injected,
      (n) => n >= 1,
    );
    // The store refused the settle (and would refuse it forever): a minute past the lease, the worker stops.
    offsetMs = 10_000 + 61_000;
    const gaveUp = await waitFor(
      async () => errors,
      (list) => list.includes("gave up settling: the lease is long gone"),
    );
    expect(gaveUp).toContain("gave up settling: the lease is long gone");
    await stop();
    expect((await getTask(deps, ADMIN, task.uuid)).status).toBe("running");
    // The store takes writes again: the tick ends the run as lost.
    refusing = false;
    expect((await tick(deps)).reclaimed).toBe(1);
    const runs = (await listRuns(deps, ADMIN, { size: 20, task_id: task.uuid })).instances;
    expect(runs.map((r) => r.status)).toEqual(["lost"]);
  }, 30_000);
});
