import { join } from "node:path";
import type { Tool } from "../../core/fields.ts";
import { detectRateLimit, type RateLimitHit, type UsageReport } from "../../core/rate-limits.ts";

/**
 * The three coding-agent CLIs: how to invoke each one non-interactively with structured output, how to
 * read its answer, and how to recognise a rate-limit answer.
 */

export interface CommandOptions {
  prompt: string;
  model?: string;
  allowDangerousFlags: boolean;
  /** The task's turn and dollar limits, for the CLIs that take them. */
  maxTurns?: number;
  maxBudgetUsd?: number;
  /** A saved session to take up instead of starting over; the prompt then tells the CLI to go on. */
  resume?: ResumePoint;
  /** The id a new session takes, for the CLIs that are given one (gemini; the others name their own). */
  sessionId?: string;
}

/** What a CLI resumes a session by: its id. */
export interface ResumePoint {
  sessionId: string;
}

export interface ParsedResult {
  /** The agent's final answer (or, when nothing structured was found, the end of stdout). */
  output?: string;
  tokens?: { input?: number; output?: number; total?: number };
  cost_usd?: number;
  /** The CLI's own error report, when its structured output says the run failed. */
  error?: string;
}

type Json = Record<string, unknown>;

/** What a CLI's stream tells as it runs, read line by line apart from the bounded stdout it keeps. */
export interface CliSignals {
  /** The CLI's session (claude's session_id, codex's thread_id): what a later run resumes. */
  sessionId?: string;
  /** The latest usage report. */
  usage?: UsageReport;
}

/** What the CLI printed. */
export interface CliOutput {
  stdout: string;
  stderr: string;
}

interface Engine {
  /** Fixed arguments selecting headless mode and JSON output. */
  base: string[];
  modelFlag: string;
  /** Safe default: edits inside the work dir only. */
  safe: string[];
  /** Only with the pool's `allow_dangerous_flags: true`. */
  dangerous: string[];
  /** The task's limits as the CLI takes them (codex and gemini take none on the command line). */
  limits?: (options: CommandOptions) => string[];
  /** The prompt as argv, so that a prompt starting with `-` is never read as an option. */
  prompt: (prompt: string, resume?: ResumePoint) => string[];
  parse: (output: CliOutput) => ParsedResult | undefined;
  /** Reads one JSON line of stdout as it comes. */
  signal?: (event: Json, signals: CliSignals) => void;
  sessions: {
    /** Where the CLI keeps its sessions, in the job's environment. */
    dir: (env: Record<string, string>) => string;
    /** The file at `path` (relative to `dir`) is one of session `id`'s: only those are saved. */
    holds: (path: string, id: string) => boolean;
    /** Starts a session with this id, for a CLI whose id would only be known once it ended. */
    named?: (id: string) => string[];
    /** The arguments of a resumed run: `base` and `safe` replace the fresh run's, `extra` is added. */
    args: (point: ResumePoint) => { base?: string[]; safe?: string[]; extra: string[] };
  };
}

const ENGINES: Record<Tool, Engine> = {
  claude: {
    // stream-json (JSONL, --verbose required): the session id and the rate_limit_events come as they happen.
    base: ["-p", "--output-format", "stream-json", "--verbose"],
    modelFlag: "--model",
    safe: ["--permission-mode", "acceptEdits"],
    dangerous: ["--dangerously-skip-permissions"],
    limits: ({ maxTurns, maxBudgetUsd }) => [
      ...(maxTurns === undefined ? [] : ["--max-turns", String(maxTurns)]),
      ...(maxBudgetUsd === undefined ? [] : ["--max-budget-usd", String(maxBudgetUsd)]),
    ],
    prompt: (prompt) => ["--", prompt],
    parse: ({ stdout }) => {
      const last = jsonLines(stdout)
        .filter((e) => e.type === "result" || typeof e.result === "string")
        .at(-1);
      if (!last) return undefined;
      const usage = asObject(last.usage);
      const text = str(last.result);
      // A run that failed before any answer (a session it cannot resume) tells why in `errors`.
      const errors = Array.isArray(last.errors) ? last.errors.filter((e) => typeof e === "string") : [];
      return {
        ...(last.is_error === true
          ? { error: text ?? (errors.join("; ") || str(last.subtype)) ?? "claude failed" }
          : { output: text }),
        tokens: tokens(num(usage?.input_tokens), num(usage?.output_tokens)),
        cost_usd: num(last.total_cost_usd) ?? num(last.cost_usd),
      };
    },
    signal: (event, signals) => {
      signals.sessionId ??= str(event.session_id);
      if (event.type === "rate_limit_event") signals.usage = usageReport(asObject(event.rate_limit_info));
    },
    // projects/<the cwd, dashed>/<session id>.jsonl; --resume finds a session whatever cwd it was in.
    sessions: {
      dir: (env) => join(env.CLAUDE_CONFIG_DIR ?? join(env.HOME ?? "", ".claude"), "projects"),
      holds: (path, id) => path.includes(id),
      args: ({ sessionId }) => ({ extra: ["--resume", sessionId] }),
    },
  },
  codex: {
    // A job's work dir is no git repository; codex exec refuses to run outside one without this flag.
    base: ["exec", "--json", "--skip-git-repo-check"],
    modelFlag: "--model",
    safe: ["--sandbox", "workspace-write"],
    dangerous: ["--dangerously-bypass-approvals-and-sandbox"],
    prompt: (prompt, resume) => ["--", ...(resume ? [resume.sessionId] : []), prompt],
    parse: ({ stdout }) => {
      const events = jsonLines(stdout);
      const messages = events
        .filter((e) => e.type === "item.completed")
        .map((e) => asObject(e.item))
        .filter((item) => item?.type === "agent_message" || item?.item_type === "assistant_message");
      const turns = events.filter((e) => e.type === "turn.completed" || e.type === "turn.failed");
      const usages = turns.filter((e) => e.type === "turn.completed").map((e) => asObject(e.usage));
      // `error` events also report transient trouble the CLI recovers from (`Reconnecting... 2/5`): only a
      // last turn that failed, or no completed turn at all, makes the run a failure.
      const lastTurn = turns.at(-1);
      const failed =
        lastTurn?.type === "turn.failed"
          ? lastTurn
          : usages.length === 0
            ? events.filter((e) => e.type === "error").at(-1)
            : undefined;
      if (messages.length === 0 && turns.length === 0 && !failed) return undefined;
      const sum = (key: string) => usages.reduce<number | undefined>(addField(key), undefined);
      return {
        output: str(messages.at(-1)?.text),
        tokens: tokens(sum("input_tokens"), sum("output_tokens")),
        ...(failed ? { error: errorText(failed.error ?? failed.message ?? "codex failed") } : {}),
      };
    },
    signal: (event, signals) => {
      if (event.type === "thread.started") signals.sessionId ??= str(event.thread_id);
    },
    // sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl. `exec resume` takes no --sandbox: the
    // same policy goes in as config.
    sessions: {
      dir: (env) => join(env.CODEX_HOME ?? join(env.HOME ?? "", ".codex"), "sessions"),
      holds: (path, id) => path.includes(id),
      args: () => ({
        base: ["exec", "resume", "--json", "--skip-git-repo-check"],
        safe: ["-c", 'sandbox_mode="workspace-write"'],
        extra: [],
      }),
    },
  },
  gemini: {
    // Every job's work dir is new, so never a trusted folder: without --skip-trust the CLI exits 55, and
    // it would also turn auto_edit and yolo back into "default" approval.
    base: ["--output-format", "json", "--skip-trust"],
    modelFlag: "--model",
    safe: ["--approval-mode", "auto_edit"],
    dangerous: ["--approval-mode", "yolo"],
    prompt: (prompt) => [`--prompt=${prompt}`],
    // A success is one JSON object on stdout; a failure is printed to stderr only, as pretty-printed
    // JSON after any log lines, and the exit code is the error's code modulo 256 (41 auth, 173 for a 429).
    parse: ({ stdout, stderr }) => {
      const last = [...jsonLines(stdout), lastJsonObject(stderr)]
        .filter((e) => e !== undefined && ("response" in e || "error" in e))
        .at(-1);
      if (!last) return undefined;
      const models = Object.values(asObject(asObject(last.stats)?.models) ?? {}).map((m) =>
        asObject(asObject(m)?.tokens),
      );
      const sum = (key: string) => models.reduce<number | undefined>(addField(key), undefined);
      return {
        output: str(last.response),
        tokens: tokens(sum("prompt"), sum("candidates"), sum("total")),
        ...(last.error ? { error: errorText(last.error) } : {}),
      };
    },
    // tmp/<project>/chats/session-<time>-<first 8 of the id>.jsonl, the project named by the cwd's
    // base name, which is `work` in every job: --resume <id> finds the session in the next job's HOME
    // (the projects.json that names projects is not carried, so `work` is free there). The id is printed
    // only at the end, so the worker gives it.
    sessions: {
      dir: (env) => join(env.GEMINI_CLI_HOME ?? env.HOME ?? "", ".gemini", "tmp"),
      holds: (path, id) => /(^|\/)chats\/session-[^/]+\.jsonl?$/.test(path) && path.includes(id.slice(0, 8)),
      named: (id) => ["--session-id", id],
      args: ({ sessionId }) => ({ extra: ["--resume", sessionId] }),
    },
  },
};

/** The argv of a headless run; the executable is looked up on PATH by its name. */
export function commandFor(tool: Tool, options: CommandOptions): { command: string; args: string[] } {
  const engine = ENGINES[tool];
  const resumed = options.resume && engine.sessions.args(options.resume);
  const named = !resumed && options.sessionId ? engine.sessions.named?.(options.sessionId) : undefined;
  return {
    command: tool,
    args: [
      ...(resumed?.base ?? engine.base),
      ...(options.model ? [engine.modelFlag, options.model] : []),
      ...(options.allowDangerousFlags ? engine.dangerous : (resumed?.safe ?? engine.safe)),
      ...(engine.limits?.(options) ?? []),
      ...(resumed?.extra ?? named ?? []),
      ...engine.prompt(options.prompt, options.resume),
    ],
  };
}

/** Where the CLI keeps its sessions, in a job's environment. */
export const sessionDir = (tool: Tool, env: Record<string, string>) => ENGINES[tool].sessions.dir(env);

/** The file at `path` in the session dir is one of session `id`'s. */
export const sessionHolds = (tool: Tool, path: string, id: string) => ENGINES[tool].sessions.holds(path, id);

/** The CLI is given its new session's id (CommandOptions.sessionId) rather than naming its own. */
export const namesSessions = (tool: Tool) => ENGINES[tool].sessions.named !== undefined;

/** The prompt of a resumed run: the session holds the task's own. */
export const resumePrompt = (ended: string) =>
  `Your previous attempt at this task stopped before it was done (${ended}). Go on from where it stopped and finish the task.`;

/** How much of unstructured stdout becomes the output. */
const FALLBACK_OUTPUT_CHARS = 4096;

/**
 * Reads the CLI's JSON answer (claude: one result object; codex: JSONL events; gemini: one object with
 * `response` and `stats` on stdout, or its error on stderr). Never throws: output that holds no
 * recognisable JSON gives the end of stdout.
 */
export function parseResult(tool: Tool, output: CliOutput): ParsedResult {
  const parsed = ENGINES[tool].parse(output);
  if (parsed) return withoutUndefined(parsed);
  const text = output.stdout.trim();
  return text ? { output: text.slice(-FALLBACK_OUTPUT_CHARS) } : {};
}

/** What a CLI that exited by itself reports: its result, why it failed if it did, and any limit it hit. */
export interface CliVerdict {
  result: ParsedResult;
  /** Set if and only if the run failed: a non-zero exit, or the CLI's own error report. */
  error?: string;
  /** The failure is a rate or usage limit. */
  rateLimit?: RateLimitHit;
}

/**
 * Judges a CLI run that ended with `exitCode`; a limit's reset is read relative to `now`. A usage report
 * that allowed the request, with a warning or not, is no limit; a rejected one is, whatever the text says.
 */
export function readOutcome(
  tool: Tool,
  output: CliOutput & { exitCode: number },
  now: Date,
  signals: CliSignals = {},
): CliVerdict {
  const result = parseResult(tool, output);
  if (output.exitCode === 0 && result.error === undefined) return { result };
  const reason = result.error ?? lastLine(output.stderr) ?? "no error output";
  const error = `exit code ${output.exitCode}: ${reason}`;
  const { usage } = signals;
  if (usage?.status === "rejected") {
    const { resetAt, window } = usage;
    return { result, error, rateLimit: withoutUndefined({ resetAt, window, source: "event" as const }) };
  }
  // Only the CLI's own error channels: a model's answer that speaks of limits is not a limit.
  const limit = detectRateLimit(`${result.error ?? ""}\n${output.stderr}`, now);
  return { result, error, ...(limit && { rateLimit: { ...limit, source: "message" as const } }) };
}

/** The longest stdout line read for signals; claude's tool results can be far longer and are skipped. */
const SIGNAL_LINE_BYTES = 64 * 1024;

/**
 * Reads a CLI's stdout as it streams, line by line, into `signals` (its session id, usage reports), which
 * may hold what was known before it started (the session id the worker gave).
 */
export function signalReader(
  tool: Tool,
  signals: CliSignals = {},
): { push(chunk: Buffer): void; signals: CliSignals } {
  const read = ENGINES[tool].signal;
  let partial = "";
  return {
    signals,
    push(chunk) {
      if (!read) return;
      const lines = (partial + chunk.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      if (partial.length > SIGNAL_LINE_BYTES) partial = "\u0000"; // the rest of an overlong line: skipped
      for (const line of lines) {
        const event = line.length <= SIGNAL_LINE_BYTES ? tryJson(line.trim()) : undefined;
        if (event) read(event, signals);
      }
    },
  };
}

/** Claude's `rate_limit_info`: the window it names, with that window's own status and use when given. */
function usageReport(info: Json | undefined): UsageReport | undefined {
  const status = str(info?.status);
  if (!info || !status) return undefined;
  const window = str(info.rateLimitType);
  const ofWindow = asObject(asObject(info.unifiedWindows)?.[window ?? ""]);
  const resetsAt = num(info.resetsAt) ?? num(ofWindow?.resetsAt);
  return withoutUndefined({
    // `allowed` overall may be `allowed_warning` for the window: the more telling of the two.
    status: status === "allowed" ? (str(ofWindow?.status) ?? status) : status,
    window,
    resetAt: resetsAt === undefined ? undefined : new Date(resetsAt * 1000),
    utilization: num(ofWindow?.utilization) ?? num(info.utilization),
    overage: typeof info.isUsingOverage === "boolean" ? info.isUsingOverage : undefined,
  });
}

const lastLine = (text: string) =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .at(-1);

/** The whole text as one JSON object, or else each line that is one (JSONL, or JSON after log lines). */
function jsonLines(text: string): Json[] {
  const whole = tryJson(text.trim());
  if (whole) return [whole];
  return text.split("\n").flatMap((line) => {
    const value = tryJson(line.trim());
    return value ? [value] : [];
  });
}

/** The JSON object that ends the text, pretty-printed or not, after any log lines. */
function lastJsonObject(text: string): Json | undefined {
  const trimmed = text.trimEnd();
  if (!trimmed.endsWith("}")) return undefined;
  // The object opens at the start of a line: the last such `{` from which the rest parses.
  const starts = [...trimmed.matchAll(/^\{/gm)].map((m) => m.index).reverse();
  for (const start of starts) {
    const value = tryJson(trimmed.slice(start));
    if (value) return value;
  }
  return undefined;
}

function tryJson(text: string): Json | undefined {
  if (!text.startsWith("{")) return undefined;
  try {
    return asObject(JSON.parse(text));
  } catch {
    return undefined;
  }
}

const asObject = (value: unknown): Json | undefined =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
const str = (value: unknown) => (typeof value === "string" ? value : undefined);
const num = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : undefined);
/**
 * An error as text: a string as is, else its `message`, else its JSON. A message that is itself an API's
 * JSON error body (`{"error":{"message":…}}`, as gemini passes them on) gives the message inside.
 */
function errorText(value: unknown): string {
  const text = str(value) ?? str(asObject(value)?.message) ?? JSON.stringify(value);
  const inner = str(asObject(tryJson(text.trim())?.error)?.message);
  return inner ?? text;
}
const addField = (key: string) => (total: number | undefined, item: Json | undefined) => {
  const value = num(item?.[key]);
  return value === undefined ? total : (total ?? 0) + value;
};

function tokens(input?: number, output?: number, total?: number): ParsedResult["tokens"] {
  const sum = total ?? (input !== undefined && output !== undefined ? input + output : undefined);
  if (input === undefined && output === undefined && sum === undefined) return undefined;
  return withoutUndefined({ input, output, total: sum });
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
