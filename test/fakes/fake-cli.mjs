// A stand-in for the claude, codex and gemini CLIs: prints each one's real headless JSON shape and obeys
// directives in the prompt. Plain JS so that it runs without tsx. Directives:
//   [sleep:N]             sleep N seconds before answering
//   [exit:N]              print an error to stderr and exit with code N
//   [write:path=content]  write a file relative to the cwd (parent dirs created)
//   [symlink:path=target] create a symlink in the cwd
//   [noise:N]             print N bytes to stderr
//   [ratelimit]           answer with the tool's rate-limit error and exit 1
//   [ratelimit-reset:ISO] the same, with that reset time in the tool's words
//   [fail-first:name]     exit 2 unless $FAKE_CLI_STATE_DIR/name exists, creating it: fails the first run,
//                         succeeds afterwards (FAKE_CLI_STATE_DIR must be set, e.g. in the pool's credentials)
//   [spawn-grandchild]    leave a `sleep 300` child in the process group, holding stdout and stderr
//   [pid-file:path]       write the own pid to an absolute path (and the grandchild's to path.grandchild)
//   [ignore-sigterm]      survive SIGTERM
//   [echo-env:NAME]       add NAME=value (or NAME=<unset>) to the result text
//   [echo-args]           add the argv to the result text
// Otherwise it succeeds with the result text `done: <prompt>`, token counts and a cost.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const USAGE = { input: 12, output: 34, cost: 0.0123 };

/** Per tool: what a success and a rate-limit answer look like. */
const TOOLS = {
  claude: {
    success: (text, model) =>
      json({
        type: "result",
        subtype: "success",
        is_error: false,
        duration_ms: 1200,
        duration_api_ms: 1100,
        num_turns: 1,
        result: text,
        session_id: "5f0c6c2e-0000-4000-8000-000000000001",
        total_cost_usd: USAGE.cost,
        usage: {
          input_tokens: USAGE.input,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
          output_tokens: USAGE.output,
        },
        modelUsage: {
          [model ?? "claude-sonnet-4-5"]: { inputTokens: USAGE.input, outputTokens: USAGE.output },
        },
      }),
    rateLimit: (reset) => ({
      stdout: json({
        type: "result",
        subtype: "success",
        is_error: true,
        result: reset
          ? `Claude AI usage limit reached|${Math.floor(reset.getTime() / 1000)}`
          : 'API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed your account\'s rate limit. Please try again later."}}',
        total_cost_usd: 0,
        usage: { input_tokens: 0, output_tokens: 0 },
      }),
      stderr: "",
    }),
  },
  codex: {
    success: (text) =>
      [
        { type: "thread.started", thread_id: "0199a213-81c0-7800-8aa1-bbab2a035a53" },
        { type: "turn.started" },
        { type: "item.completed", item: { id: "item_0", type: "reasoning", text: "**Working on it**" } },
        { type: "item.completed", item: { id: "item_1", type: "agent_message", text } },
        {
          type: "turn.completed",
          usage: { input_tokens: USAGE.input, cached_input_tokens: 0, output_tokens: USAGE.output },
        },
      ]
        .map(json)
        .join(""),
    rateLimit: (reset) => {
      const message = reset
        ? `You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) or try again in ${Math.ceil((reset.getTime() - Date.now()) / 60_000)} minutes.`
        : "stream error: exceeded retry limit, last status: 429 Too Many Requests";
      return {
        stdout: [
          { type: "thread.started", thread_id: "0199a213-81c0-7800-8aa1-bbab2a035a54" },
          { type: "turn.started" },
          { type: "error", message },
          { type: "turn.failed", error: { message } },
        ]
          .map(json)
          .join(""),
        stderr: "",
      };
    },
  },
  gemini: {
    success: (text, model) =>
      json({
        response: text,
        stats: {
          models: {
            [model ?? "gemini-2.5-pro"]: {
              api: { totalRequests: 1, totalErrors: 0, totalLatencyMs: 900 },
              tokens: {
                prompt: USAGE.input,
                candidates: USAGE.output,
                total: USAGE.input + USAGE.output,
                cached: 0,
                thoughts: 0,
                tool: 0,
              },
            },
          },
          tools: { totalCalls: 0, totalSuccess: 0, totalFail: 0, totalDurationMs: 0, byName: {} },
          files: { totalLinesAdded: 0, totalLinesRemoved: 0 },
        },
      }),
    rateLimit: (reset) => {
      const seconds = reset ? Math.ceil((reset.getTime() - Date.now()) / 1000) : 0;
      const message = reset
        ? `You have exhausted your capacity on this model. Your quota will reset after ${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m${seconds % 60}s.`
        : '[API Error: {"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}]';
      return { stdout: json({ error: { type: "Error", message, code: 1 } }), stderr: `${message}\n` };
    },
  },
};

const json = (value) => `${JSON.stringify(value)}\n`;

/** The prompt: after `--` (claude, codex) or in `--prompt=` (gemini). */
function promptOf(argv) {
  const end = argv.indexOf("--");
  return end >= 0 ? argv[end + 1] : argv.find((a) => a.startsWith("--prompt="))?.slice("--prompt=".length);
}

function modelOf(argv) {
  const i = argv.findIndex((a) => a === "--model" || a === "-m");
  return i >= 0 ? argv[i + 1] : undefined;
}

const splitAtEq = (spec) => {
  const eq = spec.indexOf("=");
  return [spec.slice(0, eq), spec.slice(eq + 1)];
};

/** Exits once stdout and stderr are flushed (process.exit alone drops what a full pipe has not taken). */
async function exit(code) {
  await Promise.all(
    [process.stdout, process.stderr].map((s) => new Promise((resolve) => s.write("", resolve))),
  );
  process.exit(code);
}

function fail(code, message) {
  process.stderr.write(`Error: ${message}\n`);
  return exit(code);
}

export async function runFake(tool) {
  const argv = process.argv.slice(2);
  const cli = TOOLS[tool];
  const prompt = promptOf(argv);
  if (prompt === undefined) return fail(2, "no prompt given");
  const directives = [...prompt.matchAll(/\[([a-z-]+)(?::([^\]]*))?\]/g)].map(([, name, value]) => ({
    name,
    value,
  }));
  const all = (name) => directives.filter((d) => d.name === name).map((d) => d.value ?? "");
  const one = (name) => all(name)[0];
  const has = (name) => all(name).length > 0;

  if (has("ignore-sigterm")) process.on("SIGTERM", () => process.stderr.write("ignoring SIGTERM\n"));
  for (const [path, content] of all("write").map(splitAtEq)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
  for (const [path, target] of all("symlink").map(splitAtEq)) symlinkSync(target, path);
  if (has("noise")) process.stderr.write(`${"x".repeat(Number(one("noise")))}\n`);
  const pidFile = one("pid-file");
  if (pidFile) writeFileSync(pidFile, String(process.pid));
  if (has("spawn-grandchild")) {
    // Same process group, holding our stdout and stderr, like a shell a tool call left running.
    const child = spawn("sleep", ["300"], { stdio: ["ignore", "inherit", "inherit"] });
    if (pidFile) writeFileSync(`${pidFile}.grandchild`, String(child.pid));
  }
  process.stderr.write(`${tool} (fake): working\n`);
  if (has("sleep")) await sleep(Number(one("sleep")) * 1000);

  const failFirst = one("fail-first");
  if (failFirst) {
    // No default dir: state left over from an earlier test run would make the first run succeed.
    const stateDir = process.env.FAKE_CLI_STATE_DIR;
    if (!stateDir) return fail(64, "[fail-first] needs FAKE_CLI_STATE_DIR in the CLI's environment");
    const marker = join(stateDir, failFirst);
    if (!existsSync(marker)) {
      mkdirSync(stateDir, { recursive: true });
      writeFileSync(marker, "");
      return fail(2, `transient failure (${failFirst}); it succeeds next time`);
    }
  }
  if (has("ratelimit") || has("ratelimit-reset")) {
    const reset = has("ratelimit-reset") ? new Date(one("ratelimit-reset")) : undefined;
    const { stdout, stderr } = cli.rateLimit(reset);
    process.stdout.write(stdout);
    process.stderr.write(stderr);
    return exit(1);
  }
  if (has("exit")) return fail(Number(one("exit")), `simulated failure with exit code ${one("exit")}`);

  const lines = [`done: ${prompt}`];
  for (const name of all("echo-env")) lines.push(`${name}=${process.env[name] ?? "<unset>"}`);
  if (has("echo-args")) lines.push(`args: ${JSON.stringify(argv)}`);
  process.stdout.write(cli.success(lines.join("\n"), modelOf(argv)));
  return exit(0); // even if a grandchild still holds the pipes
}
