import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { directBackend } from "../../containers/worker/backend.ts";
import { runWorker } from "../../containers/worker/worker.ts";
import { readTaskLog } from "../../core/artifacts.ts";
import { systemClock } from "../../core/deps.ts";
import { blobKeys } from "../../core/identifiers.ts";
import type { Task } from "../../core/records.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { listRuns } from "../../core/runs.ts";
import { cancelTask, getTask, submitTask } from "../../core/tasks.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";
import { waitFor } from "../support/wait.ts";

// codex: its log of a short run fits on the run record (claude's stream-json opens with 3 KB of session info).
const CONFIG = "pools:\n  - { name: p, tool: codex, account: a, max_concurrency: 2, lease_seconds: 30 }\n";

// The worker loop in this process, on in-memory ports, running the fake CLIs as real child processes.
const originalPath = process.env.PATH;
beforeEach(() => {
  process.env.PATH = FAKE_CLI_PATH;
});
afterEach(() => {
  process.env.PATH = originalPath;
});

function start(ecsAgentUri?: string) {
  const deps = { ...memoryDeps(CONFIG).deps, clock: systemClock };
  const stopping = new AbortController();
  const loop = runWorker(directBackend(deps, { pool: "p", workerId: "w-test", slots: 2 }), {
    waitSeconds: 0.1,
    credentials: {},
    stopping: stopping.signal,
    drainSeconds: 1,
    checkpointSeconds: 120,
    ecsAgentUri,
  });
  return { deps, stop: () => stopping.abort(), loop };
}

describe("worker loop", () => {
  it("runs a task to success and registers itself while it serves", async () => {
    const { deps, stop, loop } = start();
    const { task } = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "hello" }));
    const done = await waitFor(
      () => getTask(deps, ADMIN, task.uuid),
      (t) => t.status === "succeeded",
    );
    expect(done.result?.output).toContain("hello");
    const now = Math.floor(Date.now() / 1000);
    expect(await deps.workers.listWorkers(now)).toMatchObject([{ worker_id: "w-test", pool: "p", slots: 2 }]);
    stop();
    await loop;
    expect(await deps.workers.listWorkers(now + 1)).toEqual([]);
  });

  it("drops a malformed message and goes on with the next", async () => {
    const { deps, stop, loop } = start();
    await deps.queue.send("p", { body: "{not a dispatch", dedupId: "junk-1", groupId: "junk" });
    await deps.queue.send("p", { body: JSON.stringify({ run_id: "r" }), dedupId: "junk-2", groupId: "junk" });
    const { task } = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "after" }));
    await waitFor(
      () => getTask(deps, ADMIN, task.uuid),
      (t) => t.status === "succeeded",
    );
    expect(deps.queue.depth("p")).toBe(0);
    stop();
    await loop;
  });

  it("keeps a short log on the run, or in S3 when the run was ended elsewhere before it settled", async () => {
    const { deps, stop, loop } = start();
    const submit = async (prompt: string) =>
      (await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt }))).task;
    const plain = await submit("[noise:50] plain");
    // Canceled while its job runs: no heartbeat notices before the job ends (a 30 s lease beats every
    // 10 s), so the worker finds out only when its settle is dropped.
    const canceled = await submit("[sleep:1] [noise:50] canceled");
    await waitFor(
      () => getTask(deps, ADMIN, canceled.uuid),
      (t) => t.status === "running",
    );
    await cancelTask(deps, ADMIN, canceled.uuid);
    await waitFor(
      () => getTask(deps, ADMIN, plain.uuid),
      (t) => t.status === "succeeded",
    );
    const logKey = (task: Task) => blobKeys.log(task.uuid, task.run_id as string);
    expect(await deps.blobs.get(logKey(plain))).toBeUndefined();
    expect(await readTaskLog(deps, ADMIN, plain.uuid)).toContain("x".repeat(50));
    const stored = await waitFor(
      () => deps.blobs.get(logKey(canceled)),
      (body) => body !== undefined,
    );
    expect(Buffer.from(stored as Uint8Array).toString()).toContain("x".repeat(50));
    expect(await readTaskLog(deps, ADMIN, canceled.uuid)).toContain("x".repeat(50));
    stop();
    await loop;
  });

  it("protects its ECS task from scale-in while it runs a job, and gives it up after", async () => {
    // The ECS agent's task-protection endpoint, over real HTTP: it records what the worker asks.
    const asked: { path?: string; body: unknown }[] = [];
    const agent = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        asked.push({ path: `${req.method} ${req.url}`, body: JSON.parse(body) });
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ protection: { ProtectionEnabled: true } }));
      });
    });
    await new Promise<void>((resolve) => agent.listen(0, "127.0.0.1", resolve));
    const { port } = agent.address() as AddressInfo;
    const { deps, stop, loop } = start(`http://127.0.0.1:${port}/api/task-id`);
    try {
      const { task } = await submitTask(
        deps,
        ADMIN,
        submitTaskSchema.parse({ pool: "p", prompt: "[sleep:1] go", timeout: 600 }),
      );
      const running = await waitFor(
        () => getTask(deps, ADMIN, task.uuid),
        (t) => t.status === "running",
      );
      expect(running.status).toBe("running");
      await waitFor(
        async () => asked.length,
        (n) => n >= 2,
      );
      expect((await getTask(deps, ADMIN, task.uuid)).status).toBe("succeeded");
      // 600 s of timeout and 120 s of margin: 12 minutes.
      expect(asked).toEqual([
        {
          path: "PUT /api/task-id/task-protection/v1/state",
          body: { ProtectionEnabled: true, ExpiresInMinutes: 12 },
        },
        { path: "PUT /api/task-id/task-protection/v1/state", body: { ProtectionEnabled: false } },
      ]);
    } finally {
      stop();
      await loop;
      agent.close();
    }
    expect(asked).toHaveLength(2);
  });

  it("runs its jobs when the ECS agent refuses the protection", async () => {
    const agent = createServer((_req, res) => {
      res.statusCode = 400;
      res.end(JSON.stringify({ failure: { Reason: "denied" } }));
    });
    await new Promise<void>((resolve) => agent.listen(0, "127.0.0.1", resolve));
    const { port } = agent.address() as AddressInfo;
    const { deps, stop, loop } = start(`http://127.0.0.1:${port}`);
    try {
      const { task } = await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "go" }));
      await waitFor(
        () => getTask(deps, ADMIN, task.uuid),
        (t) => t.status === "succeeded",
      );
    } finally {
      stop();
      await loop;
      agent.close();
    }
  });

  it("on SIGTERM lets a job run out the drain, then hands its run back with the attempt returned", async () => {
    const { deps, stop, loop } = start();
    const { task } = await submitTask(
      deps,
      ADMIN,
      submitTaskSchema.parse({ pool: "p", prompt: "[sleep:60] go" }),
    );
    await waitFor(
      () => getTask(deps, ADMIN, task.uuid),
      (t) => t.status === "running",
    );
    const stoppedAt = Date.now();
    stop();
    await loop;
    // It waited the 1 s drain, then killed the job (SIGTERM, then SIGKILL within the 2 s grace).
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    const after = await getTask(deps, ADMIN, task.uuid);
    expect(after).toMatchObject({ status: "dispatched", attempt: 1 });
    const runs = await listRuns(deps, ADMIN, { task_id: task.uuid, size: 10 });
    expect(runs.instances.map((r) => [r.attempt, r.status])).toEqual([
      [1, "lost"],
      [1, "dispatched"],
    ]);
    expect(runs.instances[0]?.error).toMatch(/released/);
  });
});
