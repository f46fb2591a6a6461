import { describe, expect, it } from "vitest";
import {
  commandFor,
  parseResult,
  readOutcome,
  resumePrompt,
  sessionHolds,
  signalReader,
} from "../../containers/worker/engines.ts";
import type { Tool } from "../../core/fields.ts";
import { readFixture } from "../clis/fixtures.ts";

const DANGEROUS = ["--dangerously-skip-permissions", "--dangerously-bypass-approvals-and-sandbox", "yolo"];

describe("commandFor", () => {
  it("runs claude headless with streamed JSON output, edits allowed in the work dir only", () => {
    expect(commandFor("claude", { prompt: "fix it", allowDangerousFlags: false })).toEqual({
      command: "claude",
      args: [
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "acceptEdits",
        "--",
        "fix it",
      ],
    });
  });

  it("passes a task's turn and dollar limits to claude, the one CLI that takes them", () => {
    const limits = { prompt: "p", allowDangerousFlags: false, maxTurns: 7, maxBudgetUsd: 0.25 };
    expect(commandFor("claude", limits).args).toEqual(
      expect.arrayContaining(["--max-turns", "7", "--max-budget-usd", "0.25"]),
    );
    expect(commandFor("claude", limits).args.slice(-2)).toEqual(["--", "p"]);
    for (const tool of ["codex", "gemini"] as const)
      expect(commandFor(tool, limits).args).not.toContain("--max-turns");
  });

  it("runs codex exec with JSONL events in the workspace-write sandbox, outside a git repo", () => {
    expect(commandFor("codex", { prompt: "fix it", allowDangerousFlags: false })).toEqual({
      command: "codex",
      args: ["exec", "--json", "--skip-git-repo-check", "--sandbox", "workspace-write", "--", "fix it"],
    });
  });

  it("runs gemini headless with JSON output in an untrusted work dir, auto-approving edits only", () => {
    expect(commandFor("gemini", { prompt: "fix it", allowDangerousFlags: false })).toEqual({
      command: "gemini",
      args: ["--output-format", "json", "--skip-trust", "--approval-mode", "auto_edit", "--prompt=fix it"],
    });
  });

  it.each(["claude", "codex", "gemini"] as const)(
    "%s: no dangerous flag unless the pool allows it",
    (tool) => {
      const safe = commandFor(tool, { prompt: "p", allowDangerousFlags: false }).args;
      const allowed = commandFor(tool, { prompt: "p", allowDangerousFlags: true }).args;
      expect(safe.filter((a) => DANGEROUS.includes(a))).toEqual([]);
      expect(allowed.filter((a) => DANGEROUS.includes(a))).toHaveLength(1);
    },
  );

  it("passes the model through when given", () => {
    const args = (tool: "claude" | "codex" | "gemini") =>
      commandFor(tool, { prompt: "p", model: "m-1", allowDangerousFlags: false }).args;
    expect(args("claude")).toEqual(expect.arrayContaining(["--model", "m-1"]));
    expect(args("codex")).toEqual(expect.arrayContaining(["--model", "m-1"]));
    expect(args("gemini")).toEqual(expect.arrayContaining(["--model", "m-1"]));
    expect(commandFor("claude", { prompt: "p", allowDangerousFlags: false }).args).not.toContain("--model");
  });

  it("keeps a prompt that looks like an option a single argument after the options", () => {
    const prompt = "--help me; rm -rf / `whoami` $(id)";
    expect(commandFor("claude", { prompt, allowDangerousFlags: false }).args.slice(-2)).toEqual([
      "--",
      prompt,
    ]);
    expect(commandFor("codex", { prompt, allowDangerousFlags: false }).args.slice(-2)).toEqual([
      "--",
      prompt,
    ]);
    expect(commandFor("gemini", { prompt, allowDangerousFlags: false }).args.at(-1)).toBe(
      `--prompt=${prompt}`,
    );
  });
});

describe("resumed sessions", () => {
  const valueAfter = (args: string[], name: string) => args[args.indexOf(name) + 1] as string;
  it.each([
    ["claude", (args: string[]) => ({ sessionId: valueAfter(args, "--resume") })],
    ["codex", (args: string[]) => ({ sessionId: valueAfter(args, "--") })],
    ["gemini", (args: string[]) => ({ sessionId: valueAfter(args, "--resume") })],
  ] as const)("%s takes up a session with the argv the real CLI accepted", (tool, pointOf) => {
    const fixture = readFixture(tool, "resumed");
    const { args } = commandFor(tool, {
      prompt: resumePrompt("timed out after 600 s"),
      allowDangerousFlags: false,
      resume: pointOf(fixture.args),
    });
    expect(args).toEqual(fixture.args);
    expect(fixture.exit_code).toBe(0);
  });

  it("codex resumed past its permissions keeps the dangerous flag, which exec resume takes", () => {
    const { args } = commandFor("codex", {
      prompt: "p",
      allowDangerousFlags: true,
      resume: { sessionId: "t-1" },
    });
    expect(args).toEqual([
      "exec",
      "resume",
      "--json",
      "--skip-git-repo-check",
      "--dangerously-bypass-approvals-and-sandbox",
      "--",
      "t-1",
      "p",
    ]);
  });

  it("gives gemini its new session's id (it prints its own only at the end); claude and codex name theirs", () => {
    const id = "0b4c5d6e-1111-4222-8333-944445555666";
    expect(commandFor("gemini", { prompt: "p", allowDangerousFlags: false, sessionId: id }).args).toEqual(
      expect.arrayContaining(["--session-id", id]),
    );
    expect(
      commandFor("claude", { prompt: "p", allowDangerousFlags: false, sessionId: id }).args,
    ).not.toContain(id);
    expect(
      commandFor("codex", { prompt: "p", allowDangerousFlags: false, sessionId: id }).args,
    ).not.toContain(id);
  });

  it("knows a session's files by its id, wherever the CLI files them", () => {
    const id = "0b4c5d6e-1111-4222-8333-944445555666";
    expect(sessionHolds("claude", `-tmp-job-work/${id}.jsonl`, id)).toBe(true);
    expect(sessionHolds("claude", "-tmp-job-work/another.jsonl", id)).toBe(false);
    expect(sessionHolds("codex", `2026/12/04/rollout-2026-12-04T02-01-25-${id}.jsonl`, id)).toBe(true);
    expect(sessionHolds("gemini", "work/chats/session-2026-12-04T02-01-0b4c5d6e.jsonl", id)).toBe(true);
    expect(sessionHolds("gemini", "work/logs/0b4c5d6e.json", id)).toBe(false);
  });

  it("a resumed run reads as any other; one whose session is gone fails with the CLI's own words", () => {
    expect(verdictOn("codex", "resumed").verdict).toEqual({
      // The whole conversation goes in again: twice the first run's tokens.
      result: expect.objectContaining({ tokens: { input: 24, output: 68, total: 92 } }),
    });
    expect(verdictOn("claude", "resume-missing").verdict.error).toContain(
      "No conversation found with session ID",
    );
    expect(verdictOn("codex", "resume-missing").verdict.error).toContain("no rollout found for thread id");
    expect(verdictOn("gemini", "resume-missing").verdict.error).toContain("Error resuming session");
  });
});

/** Output on stdout only. */
const out = (stdout: string) => ({ stdout, stderr: "" });

describe("parseResult", () => {
  it("reads claude's result object", () => {
    const stdout = JSON.stringify({
      type: "result",
      subtype: "success",
      is_error: false,
      duration_ms: 2811,
      num_turns: 3,
      result: "Added the test.",
      session_id: "a1",
      total_cost_usd: 0.0421,
      usage: { input_tokens: 120, cache_read_input_tokens: 9000, output_tokens: 380 },
    });
    expect(parseResult("claude", out(stdout))).toEqual({
      output: "Added the test.",
      tokens: { input: 120, output: 380, total: 500 },
      cost_usd: 0.0421,
    });
  });

  it("reports claude's is_error result as the error", () => {
    const stdout = JSON.stringify({
      type: "result",
      is_error: true,
      result: "Not logged in · Please run /login",
      total_cost_usd: 0,
    });
    expect(parseResult("claude", out(stdout))).toEqual({
      error: "Not logged in · Please run /login",
      cost_usd: 0,
    });
  });

  it("reads codex's JSONL: the last agent message and the turn usage", () => {
    const stdout = [
      { type: "thread.started", thread_id: "t1" },
      { type: "turn.started" },
      { type: "item.completed", item: { id: "item_0", type: "reasoning", text: "**Looking**" } },
      { type: "item.completed", item: { id: "item_1", type: "agent_message", text: "First." } },
      { type: "item.completed", item: { id: "item_2", type: "command_execution", command: "ls" } },
      { type: "item.completed", item: { id: "item_3", type: "agent_message", text: "Done: README added." } },
      {
        type: "turn.completed",
        usage: { input_tokens: 24763, cached_input_tokens: 24448, output_tokens: 122 },
      },
    ]
      .map((e) => JSON.stringify(e))
      .join("\n");
    expect(parseResult("codex", out(stdout))).toEqual({
      output: "Done: README added.",
      tokens: { input: 24763, output: 122, total: 24885 },
    });
  });

  it("reports codex's turn.failed message as the error", () => {
    const stdout = [
      { type: "thread.started", thread_id: "t1" },
      { type: "error", message: "stream disconnected" },
      { type: "turn.failed", error: { message: "You've hit your usage limit." } },
    ]
      .map((e) => JSON.stringify(e))
      .join("\n");
    expect(parseResult("codex", out(stdout))).toEqual({ error: "You've hit your usage limit." });
  });

  it("reads gemini's response and sums token stats over models", () => {
    const stdout = JSON.stringify({
      response: "The capital of France is Paris.",
      stats: {
        models: {
          "gemini-2.5-pro": {
            api: { totalRequests: 2 },
            tokens: { prompt: 100, candidates: 20, total: 130 },
          },
          "gemini-2.5-flash": { api: { totalRequests: 1 }, tokens: { prompt: 10, candidates: 5, total: 15 } },
        },
        tools: { totalCalls: 0 },
      },
    });
    expect(parseResult("gemini", out(stdout))).toEqual({
      output: "The capital of France is Paris.",
      tokens: { input: 110, output: 25, total: 145 },
    });
  });

  it("reads gemini's error from stderr, pretty-printed after log lines, and unwraps an API error body", () => {
    const error = { code: 400, message: "Bad request", status: "INVALID_ARGUMENT" };
    const report = {
      session_id: "s1",
      error: { type: "Error", message: JSON.stringify({ error }), code: 400 },
    };
    const stderr = `Ripgrep is not available.\n  cause: {\n    code: 400\n}\n${JSON.stringify(report, null, 2)}\n`;
    expect(parseResult("gemini", { stdout: "", stderr })).toEqual({ error: "Bad request" });
  });

  it("does not take codex's transient error events for a failure once a turn completed", () => {
    const stdout = [
      { type: "turn.started" },
      { type: "error", message: "Reconnecting... 5/5 (stream disconnected before completion)" },
      { type: "item.completed", item: { id: "item_0", type: "agent_message", text: "Done." } },
      { type: "turn.completed", usage: { input_tokens: 5, output_tokens: 7 } },
    ]
      .map((e) => JSON.stringify(e))
      .join("\n");
    expect(parseResult("codex", out(stdout))).toEqual({
      output: "Done.",
      tokens: { input: 5, output: 7, total: 12 },
    });
  });

  it("finds the JSON among log lines", () => {
    const stdout = `Loaded cached credentials.\n${JSON.stringify({ response: "ok", stats: {} })}\n`;
    expect(parseResult("gemini", out(stdout))).toEqual({ output: "ok" });
  });

  it.each(["claude", "codex", "gemini"] as const)("%s: never throws on unparseable output", (tool) => {
    expect(parseResult(tool, out(""))).toEqual({});
    expect(parseResult(tool, out("  \n"))).toEqual({});
    expect(parseResult(tool, out('{"truncated": '))).toEqual({ output: '{"truncated":' });
    expect(parseResult(tool, out("plain text answer\n"))).toEqual({ output: "plain text answer" });
    expect(parseResult(tool, out("[1,2]"))).toEqual({ output: "[1,2]" });
    expect(parseResult(tool, out(`x${"y".repeat(10_000)}`)).output).toHaveLength(4096);
  });

  it("ignores fields of the wrong type", () => {
    const stdout = JSON.stringify({ type: "result", result: 42, total_cost_usd: "1", usage: null });
    expect(parseResult("claude", out(stdout))).toEqual({});
  });
});

/** The verdict on a captured run, as the job runner reaches it, at the time it was captured. */
function verdictOn(tool: Tool, name: string) {
  const fixture = readFixture(tool, name);
  // Streamed in small chunks, as a pipe delivers it: lines split across chunks.
  const reader = signalReader(tool);
  const bytes = Buffer.from(fixture.stdout);
  for (let at = 0; at < bytes.length; at += 100) reader.push(bytes.subarray(at, at + 100));
  const verdict = readOutcome(
    tool,
    { stdout: fixture.stdout, stderr: fixture.stderr, exitCode: fixture.exit_code },
    new Date(fixture.captured_at),
    reader.signals,
  );
  return { fixture, verdict, signals: reader.signals };
}

const TOKENS = { input: 12, output: 34, total: 46 };

describe("the real CLIs' output (test/fixtures/clis)", () => {
  it.each([
    ["claude", "success", TOKENS],
    ["claude", "dash-prompt", TOKENS],
    ["codex", "success", TOKENS],
    ["codex", "dash-prompt", TOKENS],
    // Gemini's router asks a small model first; its tokens count too.
    ["gemini", "success", { input: 24, output: 68, total: 92 }],
    ["gemini", "dash-prompt", { input: 24, output: 68, total: 92 }],
  ] as const)("%s %s: the answer and its tokens", (tool, name, tokens) => {
    const { fixture, verdict } = verdictOn(tool, name);
    expect(fixture.exit_code).toBe(0);
    expect(verdict).toEqual({ result: expect.objectContaining({ output: fixture.answer.text, tokens }) });
  });

  it("claude reports its cost", () => {
    const { verdict } = verdictOn("claude", "success");
    expect(verdict.result.cost_usd).toBeGreaterThan(0);
  });

  it("codex: a run that reconnected on the way and completed its turn succeeds", () => {
    const { fixture, verdict } = verdictOn("codex", "reconnected");
    expect(fixture.stdout).toMatch(/"type":"error","message":"Reconnecting\.\.\. 5\/5/);
    expect(fixture.exit_code).toBe(0);
    expect(verdict).toEqual({
      result: expect.objectContaining({ output: fixture.answer.text, tokens: TOKENS }),
    });
  });

  it.each(["claude", "codex", "gemini"] as const)("%s error: the API's message, no limit", (tool) => {
    const { fixture, verdict } = verdictOn(tool, "error");
    expect(verdict.error).toMatch(
      new RegExp(`^exit code ${fixture.exit_code}: .*STANDIN_ERROR: the prompt was refused\\.`),
    );
    expect(verdict.rateLimit).toBeUndefined();
  });

  it.each(["claude", "codex", "gemini"] as const)("%s auth missing: a failure, not a limit", (tool) => {
    const { fixture, verdict } = verdictOn(tool, "auth-missing");
    expect(fixture.exit_code).not.toBe(0);
    expect(verdict.error).toMatch(/^exit code \d+: \S/);
    expect(verdict.rateLimit).toBeUndefined();
  });

  it.each(["claude", "codex", "gemini"] as const)("%s 429: a rate limit", (tool) => {
    const { verdict } = verdictOn(tool, "rate-limit");
    expect(verdict.error).toBeDefined();
    expect(verdict.rateLimit).toBeDefined();
  });

  it.each([
    ["claude", "usage-limit", { window: "five_hour", source: "event" }],
    ["claude", "weekly-limit", { window: "seven_day", source: "event" }],
    ["codex", "usage-limit", { source: "message" }],
    ["codex", "weekly-limit", { source: "message" }],
  ] as const)("%s %s: the limit and when it resets", (tool, name, how) => {
    const { fixture, verdict } = verdictOn(tool, name);
    expect(verdict.rateLimit).toEqual({ resetAt: new Date(fixture.reset_at ?? ""), ...how });
  });

  it("claude's limit comes from its rejected rate_limit_event, reset to the second", () => {
    const { signals } = verdictOn("claude", "usage-limit");
    expect(signals.usage).toMatchObject({ status: "rejected", window: "five_hour", utilization: 1 });
  });

  it("claude near its limit: a success with an allowed_warning report, no limit", () => {
    const { fixture, verdict, signals } = verdictOn("claude", "limit-warning");
    expect(fixture.exit_code).toBe(0);
    expect(verdict).toEqual({ result: expect.objectContaining({ output: fixture.answer.text }) });
    expect(signals.usage).toEqual({
      status: "allowed_warning",
      window: "five_hour",
      resetAt: new Date(fixture.reset_at ?? ""),
      utilization: 0.91,
      overage: false,
    });
  });

  it.each([
    ["claude", "success"],
    ["claude", "usage-limit"],
    ["codex", "success"],
  ] as const)("%s %s: the session the stream names", (tool, name) => {
    const { signals } = verdictOn(tool, name);
    expect(signals.sessionId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("gemini's daily quota resets at the next midnight Pacific time", () => {
    const { fixture, verdict } = verdictOn("gemini", "usage-limit");
    const resetAt = verdict.rateLimit?.resetAt;
    expect(verdict.error).toMatch(/You have exhausted your daily quota on this model\./);
    const pacific = new Intl.DateTimeFormat("en-US", {
      timeZone: "America/Los_Angeles",
      hourCycle: "h23",
      hour: "2-digit",
      minute: "2-digit",
    });
    expect(resetAt && pacific.format(resetAt)).toBe("00:00");
    const hoursAhead = ((resetAt?.getTime() ?? 0) - Date.parse(fixture.captured_at)) / 3_600_000;
    expect(hoursAhead).toBeGreaterThan(0);
    expect(hoursAhead).toBeLessThanOrEqual(24);
  });
});

describe("signalReader", () => {
  it("reads whole lines only, across chunks, and skips lines too long to be signals", () => {
    const reader = signalReader("claude");
    const event = (status: string) =>
      JSON.stringify({ type: "rate_limit_event", rate_limit_info: { status, resetsAt: 1_800_000_000 } });
    const long = JSON.stringify({ type: "user", session_id: "not-this", text: "x".repeat(70_000) });
    for (const part of [long.slice(0, 40_000), `${long.slice(40_000)}\n`, event("allowed"), "\n"])
      reader.push(Buffer.from(part));
    reader.push(Buffer.from(`{"type":"system","session_id":"s-1"}\n${event("rejected").slice(0, 30)}`));
    expect(reader.signals).toEqual({
      sessionId: "s-1",
      usage: { status: "allowed", resetAt: new Date(1_800_000_000_000) },
    });
    reader.push(Buffer.from(`${event("rejected").slice(30)}\n`));
    expect(reader.signals.usage?.status).toBe("rejected");
  });
});
