import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { runView } from "../../core/views.ts";
import { FAKE_CLI_PATH, POOL_PER_TOOL_CONFIG } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { alive, waitFor } from "../support/wait.ts";

const SECRET = "sk-test-do-not-leak-0123456789";

let stack: TestStack;
let stateDir: string;
beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), "fake-cli-state-"));
  stack = await startTestStack(POOL_PER_TOOL_CONFIG, {
    workerEnv: {
      PATH: FAKE_CLI_PATH,
      // The CLI sees only its account's credentials, so the fakes' state dir travels with them.
      SWITCHYARD_CREDENTIALS_MAIN: JSON.stringify({
        ANTHROPIC_API_KEY: SECRET,
        FAKE_CLI_STATE_DIR: stateDir,
      }),
    },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const submit = (body: object) => stack.submit(body);
const task = async (uuid: string) => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data;
const runs = async (uuid: string) =>
  (await stack.call("GET", `/v2/instances?task_id=${uuid}`)).json?.data.instances as ReturnType<
    typeof runView
  >[];
const settled = (uuid: string, ms = 30_000) =>
  waitFor(
    () => task(uuid),
    (t) => ["succeeded", "failed", "canceled"].includes(t?.status),
    ms,
  );

describe("running the CLIs", () => {
  for (const tool of ["claude", "codex", "gemini"] as const) {
    it(`runs a ${tool} task: result, tokens, cost, logs and output files`, async () => {
      const uuid = await submit({
        tool,
        model: "fast-model",
        prompt: "[write:out/report.md=# Report] summarize the repo",
        input_files: [{ name: "src/main.ts", content: "console.log(1)" }],
        output_files: ["out/report.md", "out/missing.txt"],
      });
      const done = await settled(uuid);
      expect(done).toMatchObject({
        status: "succeeded",
        attempt: 1,
        result: { exit_code: 0, files: ["out/report.md"] },
      });
      expect(done.result.output).toContain("summarize the repo");
      expect(done.result.tokens?.total ?? done.result.cost_usd).toBeGreaterThan(0);

      const [run] = await runs(uuid);
      expect(run).toMatchObject({
        status: "succeeded",
        attempt: 1,
        exit_code: 0,
        worker: expect.any(String),
      });
      expect(run?.latency_ms).toBeGreaterThan(0);
      expect(Date.parse(run?.end_time ?? "")).toBeGreaterThanOrEqual(Date.parse(run?.start_time ?? ""));

      const logs = await stack.call("GET", `/v2/tasks/${uuid}/logs`);
      expect(logs.status).toBe(200);
      expect(logs.text.length).toBeGreaterThan(0);
      const files = (await stack.call("GET", `/v2/tasks/${uuid}/files`)).json?.data;
      expect(files).toEqual(
        expect.arrayContaining([
          { path: "out/report.md", is_input: false, size_bytes: 8 },
          { path: "src/main.ts", is_input: true, size_bytes: 14 },
        ]),
      );
      expect((await stack.call("GET", `/v2/tasks/${uuid}/files/out/report.md`)).text).toBe("# Report");
    });
  }

  it("lists the workers serving each pool to the admin", async () => {
    const res = await stack.call("GET", "/v2/workers");
    expect(res.status).toBe(200);
    const workers = res.json?.data as {
      worker_id: string;
      pool: string;
      slots: number;
      running: number;
      last_seen: string;
    }[];
    expect(workers.map((w) => w.pool).sort()).toEqual(["claude-pool", "codex-pool", "gemini-pool"]);
    for (const worker of workers) {
      expect(worker).toMatchObject({
        worker_id: expect.any(String),
        slots: expect.any(Number),
        running: expect.any(Number),
      });
      expect(worker).not.toHaveProperty("expires_at");
      expect(Date.now() - Date.parse(worker.last_seen)).toBeLessThan(120_000);
    }
  });

  it("keeps a short log on the run and uploads a long one to S3; GET logs answers both whole", async () => {
    // codex: a short run's whole log fits on the run record (claude's stream-json opens with 3 KB).
    const short = await submit({ tool: "codex", prompt: "[noise:100] short" });
    const long = await submit({ tool: "codex", prompt: "[noise:20000] long" });
    for (const uuid of [short, long]) expect((await settled(uuid)).status).toBe("succeeded");

    const shortLog = (await stack.call("GET", `/v2/tasks/${short}/logs`)).text;
    expect(shortLog).toContain(`${"x".repeat(100)}\n`);
    expect(shortLog).toContain("short");
    const longLog = (await stack.call("GET", `/v2/tasks/${long}/logs`)).text;
    expect(longLog).toContain(`${"x".repeat(20000)}\n`);
    expect(longLog).toContain("long");

    const listed = await stack.clients.s3.send(
      new ListObjectsV2Command({ Bucket: stack.resources.bucketName, Prefix: "logs/" }),
    );
    const keys = (listed.Contents ?? []).map((object) => object.Key ?? "");
    expect(keys.filter((key) => key.includes(long))).toHaveLength(1);
    expect(keys.filter((key) => key.includes(short))).toEqual([]);
  });

  it("retries a failure and then succeeds: two runs, attempts 1 and 2", async () => {
    const uuid = await submit({ tool: "claude", prompt: "[fail-first:retry-1] go", max_attempts: 3 });
    const done = await settled(uuid);
    expect(done).toMatchObject({ status: "succeeded", attempt: 2 });
    expect((await runs(uuid)).map((r) => [r.attempt, r.status])).toEqual([
      [1, "failed"],
      [2, "succeeded"],
    ]);
  });

  it("fails for good with the error once attempts are used", async () => {
    const uuid = await submit({ tool: "codex", prompt: "[exit:3] go", max_attempts: 1 });
    const done = await settled(uuid);
    expect(done.status).toBe("failed");
    expect(done.error_message).toMatch(/exit code 3/);
    expect((await runs(uuid))[0]).toMatchObject({ status: "failed", exit_code: 3 });
  });

  it("kills a job past its timeout and fails the run with the reason", async () => {
    const uuid = await submit({ tool: "gemini", prompt: "[sleep:60] go", timeout: "2", max_attempts: 1 });
    const done = await settled(uuid);
    expect(done.status).toBe("failed");
    expect(done.error_message).toMatch(/timed out/);
  });

  it("retries a rate-limit answer without using an attempt", async () => {
    const uuid = await submit({ tool: "claude", prompt: "[ratelimit] go", max_attempts: 1 });
    const first = await waitFor(
      () => runs(uuid),
      (r) => r.some((run) => run.status === "failed"),
    );
    expect(first[0]?.error).toMatch(/limit/i);
    const waiting = await waitFor(
      () => task(uuid),
      (t) =>
        (t.status === "scheduled" || t.status === "queued" || t.status === "dispatched") && t.attempt === 0,
      5000,
    );
    // max_attempts is 1, yet the task was not failed: the rate limit used no attempt.
    expect(waiting.status).not.toBe("failed");
    await stack.call("DELETE", `/v2/tasks/${uuid}`);
  });

  it("gives the CLI its account's credentials and nothing else secret", async () => {
    const uuid = await submit({
      tool: "claude",
      prompt:
        "[echo-env:ANTHROPIC_API_KEY] [echo-env:AWS_SECRET_ACCESS_KEY] [echo-env:SWITCHYARD_CREDENTIALS] go",
    });
    const done = await settled(uuid);
    expect(done.result.output).toContain(SECRET);
    expect(done.result.output).not.toMatch(/AWS_SECRET_ACCESS_KEY=(?!<unset>)/);
    expect(done.result.output).toContain("SWITCHYARD_CREDENTIALS=<unset>");
  });
});

describe("the real CLIs' answers (replayed by the fakes)", () => {
  it("a codex run with transient error events on the way succeeds", async () => {
    const uuid = await submit({ tool: "codex", prompt: "[reconnected] go", max_attempts: 1 });
    const done = await settled(uuid);
    expect(done).toMatchObject({
      status: "succeeded",
      result: { exit_code: 0, output: "done: [reconnected] go" },
    });
    const logs = await stack.call("GET", `/v2/tasks/${uuid}/logs`);
    expect(logs.text).toContain("Reconnecting... 5/5");
  });

  const status = async () =>
    (await stack.call("GET", "/v2/dispatcher/status")).json?.data.pools as {
      name: string;
      paused_until: string | null;
    }[];
  const HOUR = 3_600_000;
  /** The next midnight in Los Angeles after `now`: when Gemini's daily quota lifts. */
  const nextPacificMidnight = (now: Date) => {
    const pacific = (at: Date) =>
      Number(
        new Intl.DateTimeFormat("en-US", {
          timeZone: "America/Los_Angeles",
          hourCycle: "h23",
          hour: "numeric",
        }).format(at),
      );
    const next = new Date(Math.ceil(now.getTime() / HOUR) * HOUR);
    while (pacific(next) !== 0) next.setTime(next.getTime() + HOUR);
    return next;
  };

  it.each([
    ["claude", "claude-pool", "5-hour limit", 2 * HOUR],
    ["claude", "claude-pool", "weekly limit", 3 * 24 * HOUR],
    ["codex", "codex-pool", "usage limit", 2 * HOUR],
    ["gemini", "gemini-pool", "daily quota", undefined],
  ] as const)(
    "%s's %s pauses its account's pools until the reset it names",
    async (tool, pool, words, ahead) => {
      // Gemini's answer names no time; the directive's time only says until when the fake answers it.
      const named = new Date(Date.now() + (ahead ?? HOUR));
      const uuid = await submit({
        tool,
        prompt: `[ratelimit-reset:${named.toISOString()}] go`,
        max_attempts: 1,
      });
      try {
        const reset = ahead === undefined ? nextPacificMidnight(new Date()) : named;
        const paused = await waitFor(
          async () => (await status()).find((p) => p.name === pool)?.paused_until,
          (until) => typeof until === "string",
        );
        expect(Math.abs(Date.parse(paused ?? "") - reset.getTime())).toBeLessThan(60_000);
        const waiting = await waitFor(
          () => task(uuid),
          (t) => t.status === "scheduled",
        );
        // The limit used no attempt: the task waits for the reset.
        expect(waiting).toMatchObject({ attempt: 0, next_run_time: paused });
        expect(waiting.error_message).toContain(words);
      } finally {
        await stack.call("DELETE", `/v2/tasks/${uuid}`);
        await stack.call("POST", `/v2/pools/${pool}/resume`);
      }
    },
  );
});

describe("stopping work", () => {
  it("cancels a running task: its process is gone within seconds", async () => {
    const pidFile = join(stateDir, "cancel.pid");
    const uuid = await submit({ tool: "codex", prompt: `[pid-file:${pidFile}] [sleep:120] go` });
    await waitFor(async () => existsSync(pidFile), Boolean, 20_000);
    const pid = Number(readFileSync(pidFile, "utf8"));
    const res = await stack.call("DELETE", `/v2/tasks/${uuid}`);
    expect(res.json?.data.status).toBe("canceled");
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(
      await waitFor(
        async () => alive(),
        (a) => !a,
        10_000,
      ),
    ).toBe(false);
    expect((await task(uuid)).status).toBe("canceled");
  });

  it("reruns a task after its worker dies mid-run, once the lease expires, never twice at once", async () => {
    const pidFile = join(mkdtempSync(join(tmpdir(), "killed-worker-")), "cli.pid");
    const uuid = await submit({
      tool: "gemini",
      prompt: `[pid-file:${pidFile}] [sleep:15] go`,
      max_attempts: 3,
    });
    await waitFor(
      () => task(uuid),
      (t) => t.status === "running",
    );
    const cli = Number(
      await waitFor(async () => (existsSync(pidFile) ? readFileSync(pidFile, "utf8") : ""), Boolean),
    );
    const pid = stack.workerPid("gemini-pool");
    expect(pid).toBeGreaterThan(0);
    process.kill(pid as number, "SIGKILL");
    // Its job dies with it, as in a container: long before the lease (10 s) lets the task run again.
    const gone = await waitFor(async () => !alive(cli), Boolean, 3_000);
    expect(gone).toBe(true);

    const done = await settled(uuid, 45_000);
    expect(done.status).toBe("succeeded");
    const [lost, rerun] = await runs(uuid);
    expect(lost).toMatchObject({
      attempt: 1,
      status: "lost",
      error: expect.stringContaining("lease expired"),
    });
    expect(rerun).toMatchObject({ attempt: 2, status: "succeeded" });
    // The second run started only after the first one's lease had run out.
    expect(Date.parse(rerun?.start_time ?? "")).toBeGreaterThan(Date.parse(lost?.start_time ?? "") + 10_000);
  }, 60_000);
});
