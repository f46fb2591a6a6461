import { describe, expect, it, vi } from "vitest";
import { MemoryStore } from "../../adapters/memory/memory-store.ts";
import { admit } from "../../core/admission.ts";
import { pauseTask, resumeTask, setPoolPaused } from "../../core/controls.ts";
import type { Deps } from "../../core/deps.ts";
import type { PoolQueue } from "../../core/ports.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { cancelTask, getTask, submitTask } from "../../core/tasks.ts";
import { tick } from "../../core/tick.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const CONFIG = `
pools:
  - { name: one, tool: claude, account: a, max_concurrency: 1 }
  - { name: wide, tool: gemini, account: a, max_concurrency: 30 }
  - { name: twelve, tool: gemini, account: b, max_concurrency: 12 }
  - { name: seventy, tool: gemini, account: c, max_concurrency: 70 }
  - { name: busy, tool: codex, account: a, max_concurrency: 2 }
  - { name: idle, tool: codex, account: b, max_concurrency: 2 }
`;

const submit = (deps: Deps, body: object) =>
  submitTask(deps, ADMIN, submitTaskSchema.parse({ prompt: "p", ...body })).then((o) => o.task);

describe("admission", () => {
  it("admits by priority, then by age, one slot at a time", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const blocker = await submit(deps, { pool: "one" });
    const order: string[] = [];
    for (const priority of [1, 5, 9, 5]) {
      clock.advance(1000);
      order.push((await submit(deps, { pool: "one", priority })).uuid);
    }
    const [p1, p5old, p9, p5new] = order as [string, string, string, string];
    let current = blocker.uuid;
    for (const expected of [p9, p5old, p5new, p1]) {
      await cancelTask(deps, ADMIN, current);
      expect((await getTask(deps, ADMIN, expected)).status).toBe("dispatched");
      current = expected;
    }
  });

  it("stores a task submitted into a pool with room and nothing queued ahead already dispatched, in one write", async () => {
    const { deps, queue } = memoryDeps(CONFIG);
    const commits = vi.spyOn(deps.tasks, "commit");
    const task = await submit(deps, { pool: "wide" });
    expect(task).toMatchObject({ status: "dispatched", attempt: 1, version: 2 });
    expect(commits).toHaveBeenCalledTimes(1);
    expect(queue.depth("wide")).toBe(1);
    const events = await deps.events.listEvents(task.uuid, 10);
    expect(events.items.map((e) => [e.type, e.status])).toEqual([
      ["task.created", "queued"],
      ["task.dispatched", "dispatched"],
    ]);
    expect(await deps.tasks.getRun(task.uuid, task.run_id as string)).toMatchObject({ status: "dispatched" });
  });

  it("queues a task behind an older one, then admits it past that one's busy key", async () => {
    const { deps } = memoryDeps(CONFIG);
    const running = await submit(deps, { pool: "wide", concurrency_key: "k" });
    const waiting = await submit(deps, { pool: "wide", concurrency_key: "k" });
    const fresh = await submit(deps, { pool: "wide" });
    expect([running.status, waiting.status, fresh.status]).toEqual(["dispatched", "queued", "dispatched"]);
    const events = await deps.events.listEvents(fresh.uuid, 10);
    expect(events.items.map((e) => e.type)).toEqual(["task.created", "task.dispatched"]);
  });

  it("keeps the tenant's queued counter equal to its queued tasks through pause, resume, cancel and admission", async () => {
    const { deps } = memoryDeps(CONFIG);
    const queuedNow = async () => {
      const listed = await deps.tasks.listTasks({ tenant: "default", status: "queued", size: 100 });
      return [await deps.counters.queuedCount("default"), listed.total];
    };
    const blocker = await submit(deps, { pool: "one" });
    const a = await submit(deps, { pool: "one" });
    const b = await submit(deps, { pool: "one" });
    const c = await submit(deps, { pool: "one" });
    expect(await queuedNow()).toEqual([3, 3]);
    await pauseTask(deps, ADMIN, a.uuid);
    expect(await queuedNow()).toEqual([2, 2]);
    await resumeTask(deps, ADMIN, a.uuid);
    await cancelTask(deps, ADMIN, b.uuid);
    expect(await queuedNow()).toEqual([2, 2]);
    await cancelTask(deps, ADMIN, blocker.uuid); // frees the slot: the oldest queued one is admitted
    expect(await queuedNow()).toEqual([1, 1]);
    expect((await getTask(deps, ADMIN, c.uuid)).status).toBe("queued");
  });

  it("sends a tool-only task to the pool with the least load", async () => {
    const { deps } = memoryDeps(CONFIG);
    await submit(deps, { pool: "busy" });
    expect((await submit(deps, { tool: "codex" })).pool).toBe("idle");
  });

  it("sends a tool-only task where it starts soonest once the pools have history, not merely the least held", async () => {
    const { deps } = memoryDeps(`
pools:
  - { name: slow, tool: claude, account: a, max_concurrency: 1 }
  - { name: fast, tool: claude, account: b, max_concurrency: 3 }
`);
    await submit(deps, { pool: "slow" });
    for (let i = 0; i < 3; i++) await submit(deps, { pool: "fast" });
    // Both full, and slow holds fewer slots: without history, the share held decides, and it is a tie.
    expect((await submit(deps, { tool: "claude" })).pool).toBe("slow");
    const history = async (pool: string, seconds: number) => {
      for (let slot = 0; slot < 8; slot++) {
        await deps.tasks.commit({
          sample: { pool, slot, held_seconds: seconds, pickup_seconds: 1, priority: 5 },
        });
      }
    };
    await history("slow", 900);
    // One pool's history alone cannot be weighed against the other's load.
    expect((await submit(deps, { tool: "claude" })).pool).toBe("slow");
    await history("fast", 20);
    expect((await submit(deps, { tool: "claude" })).pool).toBe("fast");
  });

  it("loses no task when the send fails: the tick re-sends it with the same dedup id", async () => {
    const { deps, clock, queue } = memoryDeps(CONFIG);
    const failing: PoolQueue = Object.assign(Object.create(queue), {
      send: async () => Promise.reject(new Error("network down")),
    });
    const task = await submit({ ...deps, queue: failing }, { pool: "one" });
    expect(task.status).toBe("dispatched");
    expect(queue.depth("one")).toBe(0);

    await tick(deps);
    expect(queue.depth("one")).toBe(0); // not yet due: the worker may still confirm
    clock.advance(61_000);
    expect((await tick(deps)).resent).toBe(1);
    expect(queue.bodies("one").map((b) => JSON.parse(b).run_id)).toEqual([task.run_id]);
    clock.advance(61_000);
    await tick(deps);
    expect(queue.depth("one")).toBe(1); // the dedup id kept the second re-send out
  });

  it("starts a delayed task when its time comes", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    const at = new Date(clock.now().getTime() + 30_000).toISOString();
    const task = await submit(deps, { pool: "busy", scheduled_at: at });
    expect(task.status).toBe("scheduled");
    await tick(deps);
    expect((await getTask(deps, ADMIN, task.uuid)).status).toBe("scheduled");
    clock.advance(30_000);
    await tick(deps);
    expect((await getTask(deps, ADMIN, task.uuid)).status).toBe("dispatched");
  });

  it("never admits past max_concurrency when admitters race", async () => {
    const { deps } = memoryDeps(CONFIG);
    const blocker = await submit(deps, { pool: "busy" });
    for (let i = 0; i < 6; i++) await submit(deps, { pool: "busy" });
    await cancelTask(deps, ADMIN, blocker.uuid);
    await Promise.all([admit(deps, "busy"), admit(deps, "busy"), tick(deps)]);
    expect((await deps.counters.poolState("busy")).active).toBe(2);
    const dispatched = await deps.tasks.listTasks({ tenant: "default", status: "dispatched", size: 100 });
    expect(dispatched.items.filter((t) => t.pool === "busy")).toHaveLength(2);
  });

  it("admits past one page of the ready queue, up to max_concurrency, when a pool is resumed", async () => {
    const { deps } = memoryDeps(CONFIG);
    await setPoolPaused(deps, ADMIN, "seventy", true);
    for (let i = 0; i < 75; i++) expect((await submit(deps, { pool: "seventy" })).status).toBe("queued");
    await setPoolPaused(deps, ADMIN, "seventy", false);
    expect((await deps.counters.poolState("seventy")).active).toBe(70);
    expect(await deps.tasks.readyTasks("seventy", 100)).toHaveLength(5);
  });

  it("never lets a task the caller just queued pass the tasks ahead of it on a later page", async () => {
    const { deps } = memoryDeps(CONFIG);
    await setPoolPaused(deps, ADMIN, "twelve", true);
    const ahead = [];
    for (let i = 0; i < 15; i++) ahead.push(await submit(deps, { pool: "twelve", priority: 5 }));
    const low = await submit(deps, { pool: "twelve", priority: 1 });
    await deps.counters.resumePool("twelve");
    const admitted = await admit(deps, "twelve", [low]);
    expect(admitted.map((t) => t.uuid)).toEqual(ahead.slice(0, 12).map((t) => t.uuid));
    expect((await getTask(deps, ADMIN, low.uuid)).status).toBe("queued");
  });

  it("admits nothing into a paused pool: the admission transaction refuses it, with no pool read of its own", async () => {
    const { deps } = memoryDeps(CONFIG);
    await setPoolPaused(deps, ADMIN, "one", true);
    const poolReads = vi.spyOn(deps.counters, "poolState");
    const task = await submit(deps, { pool: "one" });
    expect(task.status).toBe("queued");
    // The one read is the queued task's place and expected wait, which its submission is told.
    expect(poolReads).toHaveBeenCalledTimes(1);
    expect(task.predicted_wait).toBeUndefined();
    expect((await deps.counters.poolState("one")).active).toBe(0);
  });

  it("stores a queued submission even when the read for its expected wait fails: it is only told none", async () => {
    const { deps } = memoryDeps(CONFIG);
    await setPoolPaused(deps, ADMIN, "one", true);
    vi.spyOn(deps.tasks, "readyAhead").mockRejectedValue(new Error("throttled"));
    const task = await submit(deps, { pool: "one" });
    expect(task.status).toBe("queued");
    expect(task.predicted_wait).toBeUndefined();
    expect((await getTask(deps, ADMIN, task.uuid)).status).toBe("queued");
  });

  it("parks the tasks of a busy key once, admits the tasks behind them, and reads them no more", async () => {
    const { deps } = memoryDeps(CONFIG);
    await setPoolPaused(deps, ADMIN, "wide", true);
    const keyed = [];
    for (let i = 0; i < 4; i++)
      keyed.push(await submit(deps, { pool: "wide", concurrency_key: "k", priority: 9 }));
    const free = await submit(deps, { pool: "wide", priority: 1 });
    const commits = vi.spyOn(deps.tasks, "commit");
    await setPoolPaused(deps, ADMIN, "wide", false);
    const statuses = await Promise.all(
      [...keyed, free].map(async (t) => (await getTask(deps, ADMIN, t.uuid)).status),
    );
    expect(statuses).toEqual(["dispatched", "queued", "queued", "queued", "dispatched"]);
    // Two admissions, the one refused try of the busy key, and a park for each of its waiting tasks.
    expect(commits).toHaveBeenCalledTimes(6);
    const waiting = await Promise.all(keyed.slice(1).map((t) => getTask(deps, ADMIN, t.uuid)));
    expect(waiting.every((t) => t.key_parked)).toBe(true);
    // The next pass does not read them: it writes nothing.
    await admit(deps, "wide");
    expect(commits).toHaveBeenCalledTimes(6);
  });

  it("admits a task just submitted even when the ready index has not caught up (GSIs lag on AWS)", async () => {
    class LaggingIndex extends MemoryStore {
      override async readyTasks() {
        return [];
      }
    }
    const deps = { ...memoryDeps(CONFIG).deps, store: new LaggingIndex() };
    const task = await submit(deps, { pool: "one" });
    expect(task.status).toBe("dispatched");
    expect((await getTask(deps, ADMIN, task.uuid)).status).toBe("dispatched");
  });
});
