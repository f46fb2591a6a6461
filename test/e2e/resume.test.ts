/**
 * Resumed sessions over HTTP with real worker processes and the fake CLIs: a run that times out leaves
 * its CLI session in S3, and the task's retry, on another worker process, takes it up (claude --resume
 * <its session id>, codex exec resume <id>) and does only the turns that were left; a run lost with its
 * worker is resumed from the session its job last saved while it ran.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeSession } from "../../containers/worker/sessions.ts";
import { blobKeys } from "../../core/identifiers.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const CONFIG = `pools:
  - { name: claude-pool, tool: claude, account: main, max_concurrency: 1, lease_seconds: 10, retry: { base_seconds: 3, max_seconds: 3 } }
  - { name: codex-pool, tool: codex, account: main, max_concurrency: 1, lease_seconds: 10, resume: true, retry: { base_seconds: 1, max_seconds: 1 } }
`;

let stack: TestStack;
/** Where the fake's [fail-first] marks what already failed once. */
const stateDir = mkdtempSync(join(tmpdir(), "resume-state-"));
beforeAll(async () => {
  // A running job saves its session every second: a run lost with its worker is resumed from there.
  stack = await startTestStack(CONFIG, {
    workerEnv: {
      PATH: FAKE_CLI_PATH,
      SWITCHYARD_SESSION_CHECKPOINT_SECONDS: "1",
      SWITCHYARD_CREDENTIALS_MAIN: JSON.stringify({ FAKE_CLI_STATE_DIR: stateDir }),
    },
  });
});
afterAll(async () => {
  await stack?.stop();
});

interface RunView {
  run_id: string;
  attempt: number;
  status: string;
  worker?: string;
  error?: string;
  session_id?: string;
  resumed_from?: string;
  tokens?: { input: number; output: number };
}

const task = async (uuid: string) => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data;
const runsOf = async (uuid: string) =>
  (((await stack.call("GET", `/v2/instances?task_id=${uuid}`)).json?.data.instances ?? []) as RunView[]).sort(
    (a, b) => a.attempt - b.attempt,
  );
const settled = (uuid: string, ms: number) =>
  waitFor(
    () => task(uuid),
    (t) => ["succeeded", "failed"].includes(t?.status),
    ms,
  );

/** The fake's turn k costs 1000 + 500·(k−1) input tokens: what turns `from`…`to` cost together. */
const inputTokensOf = (from: number, to: number) => {
  let sum = 0;
  for (let k = from; k <= to; k++) sum += 1000 + 500 * (k - 1);
  return sum;
};

describe("a retry takes up the CLI session its failed run left", () => {
  it("a timed-out claude task resumes with --resume <its session id> on its second attempt, on another worker process", async () => {
    const uuid = await stack.submit({
      pool: "claude-pool",
      prompt: "[turns:6@1] [echo-args] build the parser",
      timeout: 4,
      max_attempts: 2,
      resume: true,
    });
    const retrying = await waitFor(
      () => runsOf(uuid),
      (runs) => runs[0]?.status === "failed",
      30_000,
    );
    const [first] = retrying;
    expect(first).toMatchObject({
      attempt: 1,
      status: "failed",
      error: expect.stringContaining("timed out"),
    });
    expect(first?.session_id).toMatch(/^[0-9a-f-]{36}$/);
    // The retry waits 1.5 to 3 s: meanwhile the worker process that ran the first attempt dies, and the
    // pool's next process (started a second later) takes the retry.
    process.kill(stack.workerPid("claude-pool") as number, "SIGKILL");

    const done = await settled(uuid, 40_000);
    expect(done.status, JSON.stringify(done)).toBe("succeeded");
    expect(done.result.output).toContain(`"--resume","${first?.session_id}"`);
    // The CLI was told why its previous attempt stopped; the session holds the task's own prompt.
    expect(done.result.output).toContain("timed out after 4 s");
    expect(done.result.output).toContain("done: [turns:6@1] [echo-args] build the parser");
    const [, second] = await runsOf(uuid);
    expect(second).toMatchObject({
      attempt: 2,
      status: "succeeded",
      resumed_from: first?.run_id,
      session_id: first?.session_id,
    });
    expect(second?.worker).not.toBe(first?.worker);
    // Only the turns the first attempt did not finish were done again: a fresh start costs all six.
    const resumedAt = [1, 2, 3, 4, 5].find((done) => second?.tokens?.input === inputTokensOf(done + 1, 6));
    expect(resumedAt, JSON.stringify(second?.tokens)).toBeDefined();
    expect(second?.tokens?.input).toBeLessThan(inputTokensOf(1, 6));
  }, 90_000);

  it("a run lost with its worker (SIGKILL) is resumed from the session its job saved while it ran", async () => {
    const uuid = await stack.submit({
      pool: "claude-pool",
      prompt: "[turns:8@1] [echo-args] port the service",
      timeout: 60,
      max_attempts: 2,
      resume: true,
    });
    await waitFor(
      () => task(uuid),
      (t) => t?.status === "running",
      20_000,
    );
    // A few turns in (each saved within a second), the worker process dies with its job.
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    process.kill(stack.workerPid("claude-pool") as number, "SIGKILL");

    const done = await settled(uuid, 60_000);
    expect(done.status, JSON.stringify(done)).toBe("succeeded");
    const [lost, resumed] = await runsOf(uuid);
    expect(lost).toMatchObject({
      attempt: 1,
      status: "lost",
      error: expect.stringContaining("lease expired"),
    });
    expect(resumed).toMatchObject({ attempt: 2, status: "succeeded", resumed_from: lost?.run_id });
    expect(done.result.output).toContain("its worker stopped before it ended");
    // It went on after the last turn saved: at least two of the eight were done before the kill.
    const resumedAt = [2, 3, 4, 5, 6, 7].find(
      (done) => resumed?.tokens?.input === inputTokensOf(done + 1, 8),
    );
    expect(resumedAt, JSON.stringify(resumed?.tokens)).toBeDefined();
  }, 90_000);

  it("a session the CLI cannot take up is spent: the attempt after it starts over", async () => {
    const uuid = await stack.submit({
      pool: "claude-pool",
      prompt: "[fail-first:spent-session] [echo-args] fix the build",
      max_attempts: 3,
      resume: true,
    });
    const [first] = await waitFor(
      () => runsOf(uuid),
      (runs) => runs[0]?.status === "failed",
      30_000,
    );
    // Meanwhile its saved session turns into one the CLI does not have (a CLI whose format changed).
    const unknown = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    const saved = { tool: "claude" as const, occurrence: 1, ended: "exit code 2", files: [] };
    await stack.deps.blobs.put(
      blobKeys.session(uuid),
      encodeSession({ ...saved, run_id: first?.run_id as string, session_id: unknown }),
    );

    const done = await settled(uuid, 40_000);
    expect(done.status, JSON.stringify(done)).toBe("succeeded");
    const [, refused, fresh] = await runsOf(uuid);
    expect(refused).toMatchObject({ attempt: 2, status: "failed", resumed_from: first?.run_id });
    expect(refused?.error).toContain(`No conversation found with session ID: ${unknown}`);
    expect(fresh).toMatchObject({ attempt: 3, status: "succeeded" });
    expect(fresh?.resumed_from).toBeUndefined();
    expect(done.result.output).not.toContain("--resume");
  }, 60_000);

  it("a pool that resumes by default: a failed codex run's retry goes on with codex exec resume <thread id>", async () => {
    const uuid = await stack.submit({
      pool: "codex-pool",
      prompt: "[turns:3@1] [echo-args] write the tests",
      timeout: 2,
      max_attempts: 3,
    });
    const done = await settled(uuid, 40_000);
    expect(done.status, JSON.stringify(done)).toBe("succeeded");
    const runs = await runsOf(uuid);
    const last = runs.at(-1);
    expect(runs[0]?.status).toBe("failed");
    expect(last?.resumed_from).toBe(runs.at(-2)?.run_id);
    expect(done.result.output).toContain(`"exec","resume"`);
    expect(done.result.output).toContain(`"${runs[0]?.session_id}"`);
  }, 60_000);

  it("a task that says resume: false starts over, whatever its pool's default", async () => {
    const uuid = await stack.submit({
      pool: "codex-pool",
      prompt: "[turns:2@1] [echo-args] start over",
      timeout: 1,
      max_attempts: 2,
      resume: false,
    });
    const done = await settled(uuid, 30_000);
    // Each attempt starts over, so neither gets past the timeout.
    expect(done.status).toBe("failed");
    const runs = await runsOf(uuid);
    expect(runs.map((r) => r.resumed_from)).toEqual([undefined, undefined]);
    expect(runs.map((r) => r.status)).toEqual(["failed", "failed"]);
  }, 40_000);
});
