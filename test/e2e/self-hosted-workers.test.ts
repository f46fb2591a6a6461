import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../functions/_shared/routes.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const BIN = resolve(import.meta.dirname, "../../bin/schedulerctl.mjs");
const SECRET = "sk-box-do-not-leak-0123456789";

/** claude-box has no workers of its own (worker.max 0): only self-hosted ones serve it. */
const CONFIG = `
pools:
  - { name: claude-box, tool: claude, account: box, max_concurrency: 2, lease_seconds: 10, retry: { base_seconds: 1, max_seconds: 2 }, worker: { max: 0 } }
  - { name: codex-pool, tool: codex, account: main, max_concurrency: 1, lease_seconds: 10, retry: { base_seconds: 1, max_seconds: 2 } }
`;

let stack: TestStack;
let tenantKey: string;
beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
  const tenant = await stack.call("POST", "/v2/tenants", { body: { name: "acme" } });
  tenantKey = tenant.json?.data.api_key;
});
afterAll(async () => {
  await stack?.stop();
});

const task = async (uuid: string) => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data;
const workers = async () =>
  (await stack.call("GET", "/v2/workers")).json?.data as { worker_id: string; [field: string]: unknown }[];
const register = async (body: object) => stack.call("POST", "/v2/workers", { body });

/**
 * The self-hosted worker as a user runs it: `schedulerctl workers serve`, a process of its own whose
 * environment holds the API's URL, its key and its CLI's credentials, and nothing of AWS.
 */
function serve(key: string) {
  const home = mkdtempSync(join(tmpdir(), "self-hosted-"));
  const child: ChildProcess = spawn(process.execPath, [BIN, "workers", "serve", "--url", stack.url], {
    env: {
      PATH: FAKE_CLI_PATH,
      HOME: home,
      SWITCHYARD_WORKER_KEY: key,
      SWITCHYARD_CREDENTIALS: JSON.stringify({ ANTHROPIC_API_KEY: SECRET }),
      SWITCHYARD_WAIT_SECONDS: "1",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      POWERTOOLS_LOG_LEVEL: "WARN",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  return { child, exited, output: () => output };
}

describe("registering a self-hosted worker", () => {
  it("answers its id and a key once, and refuses what no worker can be", async () => {
    const created = await register({ pool: "claude-box", host: "gpu-1", resources: { slots: 3, gpus: 1 } });
    expect(created.status).toBe(201);
    expect(created.json?.data).toMatchObject({ pool: "claude-box", slots: 3 });
    expect(created.json?.data.worker_id).toMatch(/^wrk_[0-9a-f]{16}$/);
    expect(created.json?.data.api_key).toMatch(/^syw_/);
    expect((await workers()).find((w) => w.worker_id === created.json?.data.worker_id)).toMatchObject({
      pool: "claude-box",
      state: "offline",
      self_hosted: true,
      host: "gpu-1",
      resources: { slots: 3, gpus: 1 },
      slots: 3,
      running: 0,
      jobs: [],
    });
    for (const [body, field] of [
      [{ pool: "nowhere" }, "pool"],
      [{ pool: "claude-box", resources: { slots: 0 } }, "resources"],
      [{ pool: "claude-box", resources: { "Bad Name": 1 } }, "resources"],
    ] as const) {
      const refused = await register(body);
      expect([refused.status, refused.json?.code, refused.json?.message]).toEqual([
        400,
        "1001",
        expect.stringMatching(new RegExp(`^${field}`)),
      ]);
    }
    expect(
      (await stack.call("POST", "/v2/workers", { key: tenantKey, body: { pool: "claude-box" } })).status,
    ).toBe(403);
  });

  it("gives a key that every other route refuses, and whose routes refuse every other key", async () => {
    const key = (await register({ pool: "claude-box" })).json?.data.api_key as string;
    const path = (route: (typeof ROUTES)[number]) => route.path.replace(/\{[^}]+\}/g, "x");
    for (const route of ROUTES.filter((r) => !r.public && r.scope !== "worker")) {
      const body = route.method === "GET" ? undefined : {};
      const res = await stack.call(route.method, path(route), { key, body });
      expect([route.method, route.path, res.status, res.json?.code]).toEqual([
        route.method,
        route.path,
        403,
        "1009",
      ]);
    }
    const workerRoutes = ROUTES.filter((r) => r.scope === "worker");
    expect(workerRoutes.length).toBe(6);
    for (const route of workerRoutes) {
      for (const other of [stack.adminKey, tenantKey]) {
        const res = await stack.call(route.method, path(route), { key: other, body: {} });
        expect([route.path, res.status, res.json?.code]).toEqual([route.path, 403, "1009"]);
      }
    }
    // A run that is not its own is no run at all.
    const lease = await stack.call(
      "POST",
      "/v2/worker/runs/00000000-0000-4000-8000-000000000000-r000001/lease",
      {
        key,
      },
    );
    expect([lease.status, lease.json?.code]).toEqual([404, "1003"]);
  });
});

describe("schedulerctl workers", () => {
  /** schedulerctl as an admin runs it; its exit code and what it printed. */
  const schedulerctl = (args: string[]) =>
    new Promise<{ code: number; stdout: string }>((done) =>
      execFile(
        process.execPath,
        [BIN, ...args],
        { env: { PATH: process.env.PATH, SWITCHYARD_URL: stack.url, SWITCHYARD_API_KEY: stack.adminKey } },
        (err, stdout) => done({ code: err ? Number(err.code ?? 1) : 0, stdout }),
      ),
    );

  it("registers, lists and drains a worker", async () => {
    const registered = await schedulerctl([
      "workers",
      "register",
      "claude-box",
      "--host",
      "box-9",
      "--resource",
      "slots=2",
      "--resource",
      "gpu=a10",
    ]);
    expect(registered.code).toBe(0);
    const [, id] = /worker (wrk_[0-9a-f]{16}) of pool claude-box \(2 slots\)/.exec(registered.stdout) ?? [];
    expect(registered.stdout).toMatch(/key \(shown once\): syw_/);
    const listed = await schedulerctl(["workers", "list"]);
    expect(listed.stdout).toMatch(
      new RegExp(`${id}\\s+claude-box\\s+offline\\s+box-9\\s+2\\s+0\\s+gpu=a10,slots=2`),
    );
    const drained = await schedulerctl(["--json", "workers", "drain", id as string]);
    expect([drained.code, JSON.parse(drained.stdout)]).toEqual([0, { worker_id: id, state: "removed" }]);
    expect((await schedulerctl(["workers", "drain", id as string])).code).toBe(1);
  });
});

describe("a self-hosted worker", () => {
  it("runs its pool's task with only its key, then is drained: its job finishes, it exits and is removed", async () => {
    const registered = (await register({ pool: "claude-box", host: "laptop", resources: { slots: 2 } })).json
      ?.data;
    const worker = serve(registered.api_key);
    try {
      const first = await stack.submit({
        pool: "claude-box",
        prompt: "[write:out/report.md=# Report] [echo-env:ANTHROPIC_API_KEY] summarize",
        input_files: [{ name: "src/main.ts", content: "console.log(1)" }],
        output_files: ["out/report.md"],
      });
      const done = await waitFor(
        () => task(first),
        (t) => ["succeeded", "failed"].includes(t?.status),
        30_000,
      );
      expect(done, worker.output()).toMatchObject({
        status: "succeeded",
        result: { files: ["out/report.md"] },
      });
      expect(done.result.output).toContain(`ANTHROPIC_API_KEY=${SECRET}`);
      const runs = (await stack.call("GET", `/v2/instances?task_id=${first}`)).json?.data.instances;
      expect(runs).toMatchObject([{ status: "succeeded", worker: registered.worker_id }]);
      const file = await stack.call("GET", `/v2/tasks/${first}/files/out/report.md`);
      expect([file.status, file.text]).toEqual([200, "# Report"]);
      expect((await stack.call("GET", `/v2/tasks/${first}/logs`)).text).toContain("summarize");
      // Its uploads go only where the task declared outputs, under its own run.
      const undeclared = await stack.call("POST", `/v2/worker/runs/${runs[0].run_id}/uploads`, {
        key: registered.api_key,
        body: { files: ["out/other.md"] },
      });
      expect([undeclared.status, undeclared.json?.message]).toEqual([
        400,
        expect.stringMatching(/^files: out\/other.md is not an output file/),
      ]);
      expect((await workers()).find((w) => w.worker_id === registered.worker_id)).toMatchObject({
        state: "active",
        host: "laptop",
        slots: 2,
      });

      const slow = await stack.submit({ pool: "claude-box", prompt: "[sleep:4] slow" });
      await waitFor(
        () => task(slow),
        (t) => t?.status === "running",
      );
      const drained = await stack.call("DELETE", `/v2/workers/${registered.worker_id}`);
      expect(drained.json?.data).toEqual({ worker_id: registered.worker_id, state: "draining" });
      expect((await workers()).find((w) => w.worker_id === registered.worker_id)?.state).toBe("draining");
      // A claim under way when the drain came ends within its 1 s wait; none after it takes work.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const late = await stack.submit({ pool: "claude-box", prompt: "after the drain" });

      expect(await worker.exited, worker.output()).toBe(0);
      expect((await task(slow)).status).toBe("succeeded");
      // Admitted onto the pool's queue, where no worker takes it.
      expect((await task(late)).status).toBe("dispatched");
      const lateRuns = (await stack.call("GET", `/v2/instances?task_id=${late}`)).json?.data.instances;
      expect(lateRuns).toMatchObject([{ status: "dispatched" }]);
      expect(lateRuns[0].worker).toBeUndefined();
      expect((await workers()).map((w) => w.worker_id)).not.toContain(registered.worker_id);
      const refused = await stack.call("POST", "/v2/worker/report", {
        key: registered.api_key,
        body: { jobs: [], started_at: new Date().toISOString() },
      });
      expect([refused.status, refused.json?.code]).toEqual([401, "1008"]);
      expect(worker.output()).not.toContain(SECRET);
    } finally {
      worker.child.kill("SIGKILL");
    }
  });

  it("saves a timed-out run's CLI session through its presigned URLs, and its retry takes it up", async () => {
    const registered = (await register({ pool: "claude-box" })).json?.data;
    const worker = serve(registered.api_key);
    try {
      const uuid = await stack.submit({
        pool: "claude-box",
        prompt: "[turns:3@1] [echo-args] resume me",
        timeout: 2,
        max_attempts: 3,
        resume: true,
      });
      const done = await waitFor(
        () => task(uuid),
        (t) => ["succeeded", "failed"].includes(t?.status),
        40_000,
      );
      expect(done.status, worker.output()).toBe("succeeded");
      const runs = (await stack.call("GET", `/v2/instances?task_id=${uuid}`)).json?.data.instances as {
        attempt: number;
        run_id: string;
        session_id?: string;
        resumed_from?: string;
      }[];
      runs.sort((a, b) => a.attempt - b.attempt);
      expect(runs.at(-1)?.resumed_from).toBe(runs.at(-2)?.run_id);
      expect(done.result.output).toContain(`"--resume","${runs[0]?.session_id}"`);
    } finally {
      worker.child.kill("SIGKILL");
    }
  }, 60_000);

  it("is removed at once when it is drained while offline", async () => {
    const registered = (await register({ pool: "claude-box" })).json?.data;
    const drained = await stack.call("DELETE", `/v2/workers/${registered.worker_id}`);
    expect(drained.json?.data).toEqual({ worker_id: registered.worker_id, state: "removed" });
    expect((await workers()).map((w) => w.worker_id)).not.toContain(registered.worker_id);
    const gone = await stack.call("DELETE", `/v2/workers/${registered.worker_id}`);
    expect([gone.status, gone.json?.code]).toEqual([404, "1014"]);
  });
});

describe("draining a worker the stack runs (a Fargate worker on AWS)", () => {
  it("finishes its job, then it exits, and the stack starts another", { timeout: 90_000 }, async () => {
    const mine = await waitFor(
      async () => (await workers()).find((w) => w.pool === "codex-pool" && w.state === "active"),
      (w) => w !== undefined,
    );
    expect(mine).toMatchObject({ self_hosted: false });
    const pid = stack.workerPid("codex-pool");
    const job = await stack.submit({ pool: "codex-pool", prompt: "[sleep:3] codex job" });
    await waitFor(
      () => task(job),
      (t) => t?.status === "running",
    );
    const drained = await stack.call("DELETE", `/v2/workers/${mine?.worker_id}`);
    expect(drained.json?.data).toEqual({ worker_id: mine?.worker_id, state: "draining" });
    // It learns of the drain from its next report (every 30 s), by when its job has ended by itself.
    const replaced = await waitFor(
      async () => stack.workerPid("codex-pool"),
      (now) => now !== undefined && now !== pid,
      60_000,
    );
    expect(replaced).not.toBe(pid);
    expect(await task(job)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect((await workers()).map((w) => w.worker_id)).not.toContain(mine?.worker_id);
  });
});
