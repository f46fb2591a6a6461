// A stand-in for the claude, codex and gemini CLIs. It replays what the pinned CLIs printed for each case
// (test/fixtures/clis/<tool>/<case>.json, captured by `npm run fixtures:clis`): the same stdout, stderr
// and exit code, with the answer text, error message or reset time swapped for the test's. Plain JS so
// that it runs without tsx. It obeys directives in the prompt:
//   [sleep:N]             sleep N seconds before answering
//   [exit:N]              answer with the tool's API error, "simulated failure with exit code N", exit N
//   [write:path=content]  write a file relative to the cwd (parent dirs created)
//   [symlink:path=target] create a symlink in the cwd
//   [noise:N]             print N bytes to stderr
//   [ratelimit]           answer with the tool's 429 (no reset time given)
//   [ratelimit-reset:ISO] until then, answer with the tool's subscription or quota limit, resetting then
//                         (gemini's daily quota names no time: it lifts at midnight Pacific time); after
//                         it, the run goes on as if the directive were not there
//   [limited-account:NAME] the two directives above apply only where FAKE_CLI_ACCOUNT (in the pool's
//                         credentials) is NAME; elsewhere the run goes on as if they were not there
//   [limit-warning]       claude: succeed with the rate_limit_event of an account near its 5-hour limit
//   [cost:USD]            claude: report this total_cost_usd
//   [fail-first:name]     fail like [exit:2] unless $FAKE_CLI_STATE_DIR/name exists, creating it: fails the
//                         first run, succeeds afterwards (FAKE_CLI_STATE_DIR must be set, e.g. in the
//                         pool's credentials)
//   [spawn-grandchild]    leave a `sleep 300` child in the process group, holding stdout and stderr
//   [pid-file:path]       write the own pid to an absolute path (and the grandchild's to path.grandchild)
//   [ignore-sigterm]      survive SIGTERM
//   [echo-env:NAME]       add NAME=value (or NAME=<unset>) to the result text
//   [echo-args]           add the argv to the result text
//   [answer:TEXT]         answer TEXT instead of `done: <prompt>` (a JSON answer, say; no `]` in it)
//   [reconnected]         codex: succeed after the transient `error` events of a dropped connection
//   [tag:name]            name this run in the activity log
//   [turns:N@S]           the work takes N turns of S seconds; each is noted in the session as it ends,
//                         and a resumed run does only those left. Turn k costs 1000 + 500·(k−1) input
//                         tokens (the context grows) and 200 output tokens; the run reports what its own
//                         turns cost
// Otherwise it succeeds with the result text `done: <prompt>` and the captured tokens and cost.
// Like the real CLIs, every run keeps its session where the CLI does (claude: ~/.claude/projects/<cwd>/
// <id>.jsonl, codex: ~/.codex/sessions/…/rollout-…-<id>.jsonl, gemini: ~/.gemini/tmp/<project>/chats/
// session-…-<id8>.jsonl), and takes one up as the CLI does (claude --resume <id>, codex exec resume <id>,
// gemini --resume <id>), answering as the CLI did to a session it cannot find. A resumed session
// goes on with the directives of the prompt that started it.
// With FAKE_CLI_LOG set (an absolute path, in the pool's credentials), each run appends a JSON line when it
// starts and when it exits (`{"event":"start"|"exit","tag","pid","at","code"}`): an observer outside
// Switchyard sees what really ran. A SIGKILLed run writes no exit line.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const FIXTURES = join(import.meta.dirname, "../fixtures/clis");
/** The message of the captured `error` case, swapped for the test's. */
const CAPTURED_ERROR = "STANDIN_ERROR: the prompt was refused.";

const fixture = (tool, name) => JSON.parse(readFileSync(join(FIXTURES, tool, `${name}.json`), "utf8"));

/** `text` inside a JSON string: what replaces a captured text in JSON output. */
const inJson = (text) => JSON.stringify(text).slice(1, -1);

/** Replaces every `from` in stdout and stderr (in JSON-escaped form when it is JSON-escaped there). */
function swap(captured, from, to) {
  const replace = (text) => text.replaceAll(inJson(from), inJson(to)).replaceAll(from, to);
  return { ...captured, stdout: replace(captured.stdout), stderr: replace(captured.stderr) };
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const ordinal = (day) =>
  `${day}${day % 10 === 1 && day !== 11 ? "st" : day % 10 === 2 && day !== 12 ? "nd" : day % 10 === 3 && day !== 13 ? "rd" : "th"}`;
/** `1:34` and `am`, in UTC: the zone the CLIs print in on a worker. */
function clock(date) {
  const hour = date.getUTCHours();
  const minute = String(date.getUTCMinutes()).padStart(2, "0");
  return [`${hour % 12 === 0 ? 12 : hour % 12}:${minute}`, hour < 12 ? "am" : "pm"];
}

/** Claude's reset in its limit answer: `resets 1:34am (UTC)`, `resets Dec 6, 1:52am (UTC)`. */
const CLAUDE_RESET = /resets [^"·]*?\(UTC\)/;
/** Codex's: `try again at 11:08 PM.`, `try again at Dec 2nd, 2026 1:39 AM.` */
const CODEX_RESET = /try again at [^."]*\./;

/** Per tool: the captured limit answer with its reset time rewritten, as that CLI words it. */
const LIMITS = {
  claude: (reset) => {
    const [time, meridiem] = clock(reset);
    // Within a day the CLI names the time, further out the date too.
    if (reset.getTime() - Date.now() < 86_400_000)
      return resetSwapped(
        fixture("claude", "usage-limit"),
        CLAUDE_RESET,
        `resets ${time}${meridiem} (UTC)`,
        reset,
      );
    const date = `${MONTHS[reset.getUTCMonth()]} ${reset.getUTCDate()}`;
    return resetSwapped(
      fixture("claude", "weekly-limit"),
      CLAUDE_RESET,
      `resets ${date}, ${time}${meridiem} (UTC)`,
      reset,
    );
  },
  codex: (reset) => {
    const [time, meridiem] = clock(reset);
    // On the same day the CLI names the time, on another day the date too.
    if (reset.toISOString().slice(0, 10) === new Date().toISOString().slice(0, 10))
      return resetSwapped(
        fixture("codex", "usage-limit"),
        CODEX_RESET,
        `try again at ${time} ${meridiem.toUpperCase()}.`,
        reset,
      );
    const date = `${MONTHS[reset.getUTCMonth()]} ${ordinal(reset.getUTCDate())}, ${reset.getUTCFullYear()}`;
    return resetSwapped(
      fixture("codex", "weekly-limit"),
      CODEX_RESET,
      `try again at ${date} ${time} ${meridiem.toUpperCase()}.`,
      reset,
    );
  },
  gemini: () => fixture("gemini", "usage-limit"),
};

/** The captured answer with its reset text replaced, and its reset as epoch seconds (claude's rate_limit_event). */
function resetSwapped(captured, pattern, replacement, reset) {
  const found = pattern.exec(captured.stdout) ?? pattern.exec(captured.stderr);
  if (!found) throw new Error(`the captured limit answer has no reset matching ${pattern}`);
  const epoch = (date) => String(Math.floor(date.getTime() / 1000));
  const texts = swap(captured, found[0], replacement);
  return captured.reset_at
    ? swap(texts, `:${epoch(new Date(captured.reset_at))}`, `:${epoch(reset)}`)
    : texts;
}

/** The prompt: after `--` (claude, codex; after the session id in `codex exec resume`) or in `--prompt=` (gemini). */
function promptOf(argv) {
  const end = argv.indexOf("--");
  const resuming = argv[0] === "exec" && argv[1] === "resume";
  return end >= 0
    ? argv[end + (resuming ? 2 : 1)]
    : argv.find((a) => a.startsWith("--prompt="))?.slice("--prompt=".length);
}

const optionValue = (argv, name) => {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : undefined;
};

/** Where each CLI keeps its sessions, how a session's file is named, and how a run names one to resume. */
const SESSIONS = {
  claude: {
    dir: () => join(process.env.CLAUDE_CONFIG_DIR ?? join(process.env.HOME, ".claude"), "projects"),
    file: (dir, id) => join(dir, process.cwd().replace(/[^A-Za-z0-9]/g, "-"), `${id}.jsonl`),
    resumed: (argv) => optionValue(argv, "--resume"),
    idIn: /"session_id":"([^"]+)"/,
  },
  codex: {
    dir: () => join(process.env.CODEX_HOME ?? join(process.env.HOME, ".codex"), "sessions"),
    file: (dir, id) => {
      const now = new Date().toISOString();
      const day = now.slice(0, 10).split("-");
      return join(dir, ...day, `rollout-${now.slice(0, 19).replaceAll(":", "-")}-${id}.jsonl`);
    },
    resumed: (argv) =>
      argv[0] === "exec" && argv[1] === "resume" ? argv[argv.indexOf("--") + 1] : undefined,
    idIn: /"thread_id":"([^"]+)"/,
  },
  gemini: {
    dir: () => join(process.env.GEMINI_CLI_HOME ?? process.env.HOME, ".gemini", "tmp"),
    // The project is named by the cwd's base name; the file by the first 8 characters of the id.
    file: (dir, id) => {
      const minute = new Date().toISOString().slice(0, 16).replace(":", "-");
      return join(dir, basename(process.cwd()), "chats", `session-${minute}-${id.slice(0, 8)}.jsonl`);
    },
    resumed: (argv) => optionValue(argv, "--resume"),
    idIn: /"session_id": "([^"]+)"/,
  },
};

/** The files under `dir`, recursively. */
const filesUnder = (dir) =>
  existsSync(dir) ? readdirSync(dir, { recursive: true }).map((path) => join(dir, path)) : [];

/**
 * The session this run keeps: a new one, or the one it resumes, found by its id where the CLI keeps its
 * sessions. Undefined: the session to resume is not there.
 */
function openSession(tool, argv, prompt) {
  const sessions = SESSIONS[tool];
  const dir = sessions.dir();
  const id = sessions.resumed(argv);
  if (id === undefined) {
    const fresh = (tool === "gemini" && optionValue(argv, "--session-id")) || randomUUID();
    const file = sessions.file(dir, fresh);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify({ type: "prompt", prompt })}\n`);
    return { id: fresh, file, resumed: false, history: [] };
  }
  const named = tool === "gemini" ? id.slice(0, 8) : id;
  const file = filesUnder(dir).find((path) => basename(path).includes(named) && path.endsWith(".jsonl"));
  if (!file) return undefined;
  const history = readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
  appendFileSync(file, `${JSON.stringify({ type: "prompt", prompt })}\n`);
  return { id, file, resumed: true, history };
}

/** The captured answer, telling this session's id instead of the captured one. */
function inSession(tool, captured, session) {
  const capturedId = SESSIONS[tool].idIn.exec(captured.stdout)?.[1];
  return capturedId ? swap(captured, capturedId, session.id) : captured;
}

/** Input and output tokens of turn k (from 1): the context grows with every turn. */
const turnTokens = (k) => ({ input: 1000 + 500 * (k - 1), output: 200 });

/** The captured answer reporting these tokens (gemini: all of them on its main model). */
function withTokens(tool, captured, { input, output }) {
  if (tool === "gemini") {
    const answer = JSON.parse(captured.stdout);
    const [main] = Object.keys(answer.stats.models).slice(-1);
    const tokens = { ...answer.stats.models[main].tokens, input, prompt: input, candidates: output };
    answer.stats.models = {
      [main]: { ...answer.stats.models[main], tokens: { ...tokens, total: input + output } },
    };
    return { ...captured, stdout: JSON.stringify(answer, null, 2) };
  }
  const lines = captured.stdout.split("\n").map((line) => {
    if (!line.startsWith("{")) return line;
    const event = JSON.parse(line);
    if (event.type !== "result" && event.type !== "turn.completed") return line;
    return JSON.stringify({
      ...event,
      usage: { ...event.usage, input_tokens: input, output_tokens: output },
    });
  });
  return { ...captured, stdout: lines.join("\n") };
}

const splitAtEq = (spec) => {
  const eq = spec.indexOf("=");
  return [spec.slice(0, eq), spec.slice(eq + 1)];
};

/** The line a CLI streams as it starts, naming its session: claude's init, codex's thread.started. */
const OPENING = /^\{"type":"(system","subtype":"init|thread\.started)"[^\n]*\n/;
/** The opening line was streamed when the run started: the answer does not repeat it. */
let opened = false;

/** Streams the opening line of `captured`, as the CLI does before it calls the model. */
function open(captured) {
  const line = OPENING.exec(captured.stdout)?.[0];
  if (line === undefined) return;
  process.stdout.write(line);
  opened = true;
}

/** Prints the answer and exits once stdout and stderr are flushed (process.exit alone drops what a full pipe has not taken). */
async function answer({ stdout, stderr, exit_code }) {
  process.stderr.write(stderr);
  process.stdout.write(opened ? stdout.replace(OPENING, "") : stdout);
  await Promise.all(
    [process.stdout, process.stderr].map((s) => new Promise((resolve) => s.write("", resolve))),
  );
  process.exit(exit_code);
}

/** Claude's answer reporting this cost instead of the captured one. */
function withCost(captured, usd) {
  const replace = (text) => text.replace(/"total_cost_usd":[0-9.e-]+/g, `"total_cost_usd":${usd}`);
  return { ...captured, stdout: replace(captured.stdout) };
}

/** The tool's API error with this message, ending in this exit code. */
const failure = (tool, code, message) => ({
  ...swap(fixture(tool, "error"), CAPTURED_ERROR, message),
  exit_code: code,
});

export async function runFake(tool) {
  const argv = process.argv.slice(2);
  const given = promptOf(argv);
  if (given === undefined) {
    process.stderr.write("error: no prompt given\n");
    process.exit(2);
  }
  const session = openSession(tool, argv, given);
  if (!session) {
    const missing = fixture(tool, "resume-missing");
    const capturedRef = SESSIONS[tool].resumed(missing.args);
    return answer(swap(missing, capturedRef, SESSIONS[tool].resumed(argv)));
  }
  const reply = (captured) => answer(inSession(tool, captured, session));
  open(inSession(tool, fixture(tool, session.resumed ? "resumed" : "success"), session));
  // A resumed session goes on with the task its first prompt gave.
  const prompt = session.history.find((entry) => entry.type === "prompt")?.prompt ?? given;
  const directives = [...prompt.matchAll(/\[([a-z-]+)(?::([^\]]*))?\]/g)].map(([, name, value]) => ({
    name,
    value,
  }));
  const all = (name) => directives.filter((d) => d.name === name).map((d) => d.value ?? "");
  const one = (name) => all(name)[0];
  const has = (name) => all(name).length > 0;

  const activityLog = process.env.FAKE_CLI_LOG;
  if (activityLog) {
    const note = (event, code) =>
      appendFileSync(
        activityLog,
        `${JSON.stringify({ event, tag: one("tag") ?? null, pid: process.pid, at: Date.now(), code })}\n`,
      );
    note("start");
    process.on("exit", (code) => note("exit", code));
    if (!has("ignore-sigterm")) {
      // Stopped with SIGTERM (a timeout, a cancel): logged, then ended by the signal as before.
      process.once("SIGTERM", () => {
        note("exit", null);
        process.removeAllListeners("exit");
        process.kill(process.pid, "SIGTERM");
      });
    }
  }

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
  if (has("sleep")) await sleep(Number(one("sleep")) * 1000);
  let tokens;
  if (has("turns")) {
    const [count, seconds] = one("turns").split("@").map(Number);
    const done = session.history.filter((entry) => entry.type === "turn").length;
    tokens = { input: 0, output: 0 };
    for (let k = done + 1; k <= count; k++) {
      await sleep(seconds * 1000);
      appendFileSync(session.file, `${JSON.stringify({ type: "turn", n: k })}\n`);
      tokens.input += turnTokens(k).input;
      tokens.output += turnTokens(k).output;
    }
  }

  const failFirst = one("fail-first");
  if (failFirst) {
    // No default dir: state left over from an earlier test run would make the first run succeed.
    const stateDir = process.env.FAKE_CLI_STATE_DIR;
    if (!stateDir)
      return reply(failure(tool, 64, "[fail-first] needs FAKE_CLI_STATE_DIR in the CLI's environment"));
    const marker = join(stateDir, failFirst);
    if (!existsSync(marker)) {
      mkdirSync(stateDir, { recursive: true });
      writeFileSync(marker, "");
      return reply(failure(tool, 2, `transient failure (${failFirst}); it succeeds next time`));
    }
  }
  const limited = !has("limited-account") || one("limited-account") === process.env.FAKE_CLI_ACCOUNT;
  const reset = has("ratelimit-reset") ? new Date(one("ratelimit-reset")) : undefined;
  if (limited && reset && reset.getTime() > Date.now()) return reply(LIMITS[tool](reset));
  if (limited && has("ratelimit")) return reply(fixture(tool, "rate-limit"));
  if (has("exit"))
    return reply(failure(tool, Number(one("exit")), `simulated failure with exit code ${one("exit")}`));

  const lines = [has("answer") ? one("answer") : `done: ${prompt}`];
  for (const name of all("echo-env")) lines.push(`${name}=${process.env[name] ?? "<unset>"}`);
  if (has("echo-args")) lines.push(`args: ${JSON.stringify(argv)}`);
  const captured = session.resumed
    ? "resumed"
    : tool === "codex" && has("reconnected")
      ? "reconnected"
      : tool === "claude" && has("limit-warning")
        ? "limit-warning"
        : "success";
  const success = fixture(tool, captured);
  const texts = swap(success, success.answer.text, lines.join("\n"));
  const answered = tokens ? withTokens(tool, texts, tokens) : texts;
  return reply(has("cost") ? withCost(answered, Number(one("cost"))) : answered); // even if a grandchild still holds the pipes
}
