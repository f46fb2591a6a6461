import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resumePrompt } from "../../containers/worker/engines.ts";
import { type JobOutcome, type JobSpec, runJob } from "../../containers/worker/job-runner.ts";
import type { Tool } from "../../core/fields.ts";
import { CASES, type CliCase, standInEnvironment } from "./cases.ts";
import { ANSWER, ERROR_MESSAGE, type StandIn, startModelApi } from "./model-api.ts";
import { installPinnedClis, pinnedVersions } from "./pinned.ts";

/**
 * The worker's job runner with the pinned CLIs (the Dockerfile's versions, installed from npm) against
 * the model-API stand-in: each engine's exact argv is accepted, and each case's outcome is read right.
 * Run it on every bump of a CLI version in the Dockerfile, then `npm run fixtures:clis`.
 */

let bin: string;
let standIn: StandIn;
let scratch: string;
beforeAll(async () => {
  bin = await installPinnedClis(await pinnedVersions());
  standIn = await startModelApi();
  scratch = await mkdtemp(join(tmpdir(), "switchyard-real-clis-"));
});
afterAll(async () => {
  await standIn?.close();
  await rm(scratch, { recursive: true, force: true });
});

async function run(
  tool: Tool,
  cliCase: CliCase,
  options: Pick<JobSpec, "model" | "maxTurns" | "maxBudgetUsd" | "session"> & { dangerous?: boolean } = {},
) {
  const dir = await mkdtemp(join(scratch, `${tool}-${cliCase.name}-`));
  return runJob({
    tool,
    prompt: cliCase.prompt,
    model: options.model,
    maxTurns: options.maxTurns,
    maxBudgetUsd: options.maxBudgetUsd,
    session: options.session,
    allowDangerousFlags: options.dangerous ?? false,
    inputFiles: [],
    outputFiles: [],
    // Gemini retries a 429 ten times over about four minutes before it answers.
    timeoutSeconds: 360,
    env: {
      ...(await standInEnvironment(tool, cliCase, standIn, dir)),
      // Claude refuses --dangerously-skip-permissions to root unless told it is sandboxed; the worker
      // image runs as an unprivileged user, this test may not.
      ...(options.dangerous && process.getuid?.() === 0 ? { IS_SANDBOX: "1" } : {}),
    },
    path: `${bin}:${process.env.PATH}`,
  });
}

const caseOf = (tool: Tool, name: string) => {
  const found = CASES[tool].find((c) => c.name === name);
  if (!found) throw new Error(`no case ${tool} ${name}`);
  return found;
};

/** One model call's tokens, or two: gemini's router asks a small model first unless a model is named. */
const tokens = (calls: number) => ({
  input: calls * ANSWER.input,
  output: calls * ANSWER.output,
  total: calls * (ANSWER.input + ANSWER.output),
});

/** A model name each stand-in API takes, to prove the model flag reaches it. */
const MODELS: Record<Tool, string> = {
  claude: "claude-sonnet-4-5",
  codex: "gpt-5-codex",
  gemini: "gemini-2.5-pro",
};

function expectSuccess(outcome: JobOutcome, calls = 1) {
  expect(outcome.error, outcome.log).toBeUndefined();
  expect(outcome).toMatchObject({ exitCode: 0, result: { output: ANSWER.text, tokens: tokens(calls) } });
}

const sent = (text: string) =>
  standIn.requests.some((r) => r.body.includes(JSON.stringify(text).slice(1, -1)));

describe.concurrent.each(["claude", "codex", "gemini"] as const)("%s", (tool) => {
  const routed = tool === "gemini" ? 2 : 1;

  it("succeeds with the answer and its tokens", async () => {
    expectSuccess(await run(tool, caseOf(tool, "success")), routed);
  });

  it("passes a prompt that starts with '-' as it is", async () => {
    const cliCase = caseOf(tool, "dash-prompt");
    expectSuccess(await run(tool, cliCase), routed);
    expect(sent(cliCase.prompt)).toBe(true);
  });

  it("accepts the model and the dangerous flags of a pool that allows them", async () => {
    const outcome = await run(tool, caseOf(tool, "success"), { model: MODELS[tool], dangerous: true });
    expectSuccess(outcome);
    // Gemini in a new (untrusted) work dir would otherwise turn yolo back into "default" approval.
    expect(outcome.log).not.toMatch(/not trusted|Approval mode overridden/i);
    expect(
      standIn.requests.some(
        (r) => r.body.includes(`"model":"${MODELS[tool]}"`) || r.path.includes(MODELS[tool]),
      ),
    ).toBe(true);
  });

  it("takes up a saved session in a new job, the conversation so far sent with the prompt that goes on", async () => {
    const first = await run(tool, caseOf(tool, "success"), { session: {} });
    expectSuccess(first, routed);
    expect(first.session?.files.length).toBeGreaterThan(0);
    const ended = `${tool} was stopped on purpose`;
    const restore = { sessionId: first.signals.sessionId, files: first.session?.files ?? [], ended };
    const second = await run(tool, caseOf(tool, "success"), { session: { restore } });
    expect(second.error, second.log).toBeUndefined();
    expect(second.resumed).toBe(true);
    // The same session went on: its own files, written to again, under the same id.
    expect(second.session?.files.map((f) => f.path)).toEqual(first.session?.files.map((f) => f.path));
    const inJson = (text: string) => JSON.stringify(text).slice(1, -1);
    const resumed = standIn.requests.filter((r) => r.body.includes(inJson(resumePrompt(ended))));
    expect(resumed.length).toBeGreaterThan(0);
    expect(resumed.some((r) => r.body.includes(inJson(ANSWER.text)))).toBe(true);
  });

  it("fails with the API's error, not as a limit", async () => {
    const outcome = await run(tool, caseOf(tool, "error"));
    expect(outcome.error).toContain(ERROR_MESSAGE);
    expect(outcome.rateLimit).toBeUndefined();
  });

  it("fails without credentials, not as a limit", async () => {
    const outcome = await run(tool, caseOf(tool, "auth-missing"));
    expect(outcome.exitCode).not.toBe(0);
    expect(outcome.error).toMatch(/^exit code \d+: \S/);
    expect(outcome.rateLimit).toBeUndefined();
  });

  it("recognises a 429 as a rate limit", async () => {
    const outcome = await run(tool, caseOf(tool, "rate-limit"));
    expect(outcome.error).toBeDefined();
    expect(outcome.rateLimit).toBeDefined();
  });

  it("reads when a usage limit resets", async () => {
    const outcome = await run(tool, caseOf(tool, "usage-limit"));
    if (tool === "gemini") {
      // A daily quota: its answer names no time, and it lifts at midnight Pacific time.
      const hour = new Intl.DateTimeFormat("en-US", {
        timeZone: "America/Los_Angeles",
        hourCycle: "h23",
        hour: "2-digit",
        minute: "2-digit",
      });
      const resetAt = outcome.rateLimit?.resetAt;
      expect(resetAt && hour.format(resetAt)).toBe("00:00");
    } else
      expect(outcome.rateLimit).toEqual({
        resetAt: standIn.resets["usage-limit"],
        ...(tool === "claude" ? { window: "five_hour", source: "event" } : { source: "message" }),
      });
  });
});

describe.concurrent.each(["claude", "codex"] as const)("%s", (tool) => {
  it("reads a reset days ahead, dated", async () => {
    const outcome = await run(tool, caseOf(tool, "weekly-limit"));
    expect(outcome.rateLimit).toEqual({
      resetAt: standIn.resets["weekly-limit"],
      ...(tool === "claude" ? { window: "seven_day", source: "event" } : { source: "message" }),
    });
  });

  it("names its session in its stream", async () => {
    const outcome = await run(tool, caseOf(tool, "success"));
    expect(outcome.signals.sessionId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("claude", () => {
  it("takes a task's turn and dollar limits", async () => {
    expectSuccess(await run("claude", caseOf("claude", "success"), { maxTurns: 3, maxBudgetUsd: 0.5 }));
  });

  it("reports an allowed_warning near its limit, and succeeds: no limit", async () => {
    const outcome = await run("claude", caseOf("claude", "limit-warning"));
    expectSuccess(outcome);
    expect(outcome.rateLimit).toBeUndefined();
    expect(outcome.signals.usage).toMatchObject({
      status: "allowed_warning",
      window: "five_hour",
      utilization: 0.91,
    });
  });
});

describe("codex", () => {
  it("succeeds after reconnecting, its transient error events notwithstanding", async () => {
    const outcome = await run("codex", caseOf("codex", "reconnected"));
    expect(outcome.log).toContain("Reconnecting... 5/5");
    expectSuccess(outcome);
  });
});
