import { describe, expect, it } from "vitest";
import { commandFor, detectRateLimit, parseResult } from "../../containers/worker/engines.ts";

const DANGEROUS = ["--dangerously-skip-permissions", "--dangerously-bypass-approvals-and-sandbox", "yolo"];

describe("commandFor", () => {
  it("runs claude headless with JSON output, edits allowed in the work dir only", () => {
    expect(commandFor("claude", { prompt: "fix it", allowDangerousFlags: false })).toEqual({
      command: "claude",
      args: ["-p", "--output-format", "json", "--permission-mode", "acceptEdits", "--", "fix it"],
    });
  });

  it("runs codex exec with JSONL events in the workspace-write sandbox, outside a git repo", () => {
    expect(commandFor("codex", { prompt: "fix it", allowDangerousFlags: false })).toEqual({
      command: "codex",
      args: ["exec", "--json", "--skip-git-repo-check", "--sandbox", "workspace-write", "--", "fix it"],
    });
  });

  it("runs gemini headless with JSON output, auto-approving edits only", () => {
    expect(commandFor("gemini", { prompt: "fix it", allowDangerousFlags: false })).toEqual({
      command: "gemini",
      args: ["--output-format", "json", "--approval-mode", "auto_edit", "--prompt=fix it"],
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
    expect(parseResult("claude", stdout)).toEqual({
      output: "Added the test.",
      tokens: { input: 120, output: 380, total: 500 },
      cost_usd: 0.0421,
    });
  });

  it("reports claude's is_error result as the error", () => {
    const stdout = JSON.stringify({
      type: "result",
      is_error: true,
      result: "Claude AI usage limit reached|1749924000",
      total_cost_usd: 0,
    });
    expect(parseResult("claude", stdout)).toEqual({
      error: "Claude AI usage limit reached|1749924000",
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
    expect(parseResult("codex", stdout)).toEqual({
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
    expect(parseResult("codex", stdout)).toEqual({ error: "You've hit your usage limit." });
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
    expect(parseResult("gemini", stdout)).toEqual({
      output: "The capital of France is Paris.",
      tokens: { input: 110, output: 25, total: 145 },
    });
  });

  it("reports gemini's error object", () => {
    const stdout = JSON.stringify({ error: { type: "Error", message: "Quota exceeded", code: 1 } });
    expect(parseResult("gemini", stdout)).toEqual({ error: "Quota exceeded" });
  });

  it("finds the JSON among log lines", () => {
    const stdout = `Loaded cached credentials.\n${JSON.stringify({ response: "ok", stats: {} })}\n`;
    expect(parseResult("gemini", stdout)).toEqual({ output: "ok" });
  });

  it.each(["claude", "codex", "gemini"] as const)("%s: never throws on unparseable output", (tool) => {
    expect(parseResult(tool, "")).toEqual({});
    expect(parseResult(tool, "  \n")).toEqual({});
    expect(parseResult(tool, '{"truncated": ')).toEqual({ output: '{"truncated":' });
    expect(parseResult(tool, "plain text answer\n")).toEqual({ output: "plain text answer" });
    expect(parseResult(tool, "[1,2]")).toEqual({ output: "[1,2]" });
    expect(parseResult(tool, `x${"y".repeat(10_000)}`).output).toHaveLength(4096);
  });

  it("ignores fields of the wrong type", () => {
    const stdout = JSON.stringify({ type: "result", result: 42, total_cost_usd: "1", usage: null });
    expect(parseResult("claude", stdout)).toEqual({});
  });
});

describe("detectRateLimit", () => {
  const now = new Date("2026-11-27T16:00:00Z");

  it.each([
    "Claude AI usage limit reached|1749924000",
    'API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"..."}}',
    "You've hit your session limit · resets 8:30pm (Asia/Tokyo)",
    "You've hit your limit · resets 1:30am (Asia/Dhaka)",
    "■ You've hit your usage limit. Upgrade to Pro or try again in 5 days 22 hours 11 minutes.",
    "stream error: exceeded retry limit, last status: 429 Too Many Requests",
    '{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}',
    "You have exhausted your capacity on this model. Your quota will reset after 8h44m7s.",
    "[API Error: You have exhausted your daily quota on this model.]",
    "Quota exceeded for quota metric 'Generate Content API requests per minute'",
    "HTTP 429",
    "Request was rate-limited",
  ])("recognises %j", (text) => {
    expect(detectRateLimit(text, now)).toBeDefined();
  });

  it.each([
    "All tests pass.",
    "no rate limiting here",
    "Added a rate limiter to the API",
    '{"usage":{"input_tokens":429,"output_tokens":1429}}',
    "processed 429 files",
    "exit code 1: Cannot find module 'x'",
  ])("does not mistake %j for a limit", (text) => {
    expect(detectRateLimit(text, now)).toBeUndefined();
  });

  it("reads Claude's epoch form", () => {
    expect(detectRateLimit("Claude AI usage limit reached|1796054400", now)).toEqual({
      resetAt: new Date(1796054400 * 1000),
    });
  });

  it("reads an ISO time, UTC when it has no offset", () => {
    expect(detectRateLimit("usage limit reached, resets 2026-11-27T18:00:00Z", now)?.resetAt).toEqual(
      new Date("2026-11-27T18:00:00Z"),
    );
    expect(detectRateLimit("rate limit; resets 2026-11-27T18:30:00+01:00", now)?.resetAt).toEqual(
      new Date("2026-11-27T17:30:00Z"),
    );
    expect(detectRateLimit("rate limit until 2026-11-28T09:00", now)?.resetAt).toEqual(
      new Date("2026-11-28T09:00:00Z"),
    );
  });

  it("skips a stale timestamp for a later reset time", () => {
    const text = '{"error":"Error: 429 …","timestamp":"2026-11-27T15:59:58.000Z"}\nusage limit · resets 5pm';
    expect(detectRateLimit(text, now)?.resetAt).toEqual(new Date("2026-11-27T17:00:00Z"));
  });

  it.each([
    ["try again in 37 minutes", 37 * 60],
    ["retry after 120 seconds", 120],
    ["Please retry in 37.5s", 37.5],
    ["Your quota will reset after 2h30m12s.", 2 * 3600 + 30 * 60 + 12],
    ["or try again in 5 days 22 hours 11 minutes.", 5 * 86_400 + 22 * 3600 + 11 * 60],
    ["try again in 1 hour and 5 minutes", 3900],
    ["429 Too Many Requests\nRetry-After: 90", 90],
  ])("reads the delay in %j", (text, seconds) => {
    expect(detectRateLimit(`rate limit: ${text}`, now)?.resetAt).toEqual(
      new Date(now.getTime() + seconds * 1000),
    );
  });

  it.each([
    ["usage limit reached … resets at 3pm", "2026-11-28T15:00:00Z"], // 3pm has passed today
    ["usage limit reached, resets 5pm", "2026-11-27T17:00:00Z"],
    ["usage limit reached, resets at 15:00 (UTC)", "2026-11-28T15:00:00Z"],
    ["usage limit reached, resets 12am", "2026-11-28T00:00:00Z"],
    ["You've hit your limit for Claude messages. Limits will reset at 9:30 AM.", "2026-11-28T09:30:00Z"],
    ["You've hit your session limit · resets 8:30pm (Asia/Tokyo)", "2026-11-28T11:30:00Z"],
    ["Claude usage limit reached. Your limit will reset at 1pm (Etc/GMT+5).", "2026-11-27T18:00:00Z"],
    ["usage limit, resets 9am (Not/AZone)", "2026-11-28T09:00:00Z"],
  ])("reads the clock time in %j as the next one", (text, expected) => {
    expect(detectRateLimit(text, now)?.resetAt).toEqual(new Date(expected));
  });

  it("gives no reset time when none can be read or it has passed", () => {
    expect(detectRateLimit("429 Too Many Requests", now)).toEqual({});
    expect(detectRateLimit("Claude AI usage limit reached|1749924000", now)).toEqual({});
    expect(detectRateLimit("You've hit your usage limit, try again at Jul 5th, 2026 8:19 PM.", now)).toEqual(
      {},
    );
    expect(detectRateLimit("rate limit; resets 25:00", now)).toEqual({});
  });
});
