import type { Tool } from "../../core/schemas.ts";

/**
 * The three coding-agent CLIs: how to invoke each one non-interactively with structured output, how to
 * read its answer, and how to recognise a rate-limit answer.
 */

export interface CommandOptions {
  prompt: string;
  model?: string;
  allowDangerousFlags: boolean;
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

interface Engine {
  /** Fixed arguments selecting headless mode and JSON output. */
  base: string[];
  modelFlag: string;
  /** Safe default: edits inside the work dir only. */
  safe: string[];
  /** Only with the pool's `allow_dangerous_flags: true`. */
  dangerous: string[];
  /** The prompt as argv, so that a prompt starting with `-` is never read as an option. */
  prompt: (prompt: string) => string[];
  parse: (events: Json[]) => ParsedResult | undefined;
}

const ENGINES: Record<Tool, Engine> = {
  claude: {
    base: ["-p", "--output-format", "json"],
    modelFlag: "--model",
    safe: ["--permission-mode", "acceptEdits"],
    dangerous: ["--dangerously-skip-permissions"],
    prompt: (prompt) => ["--", prompt],
    parse: (events) => {
      const last = events.filter((e) => e.type === "result" || typeof e.result === "string").at(-1);
      if (!last) return undefined;
      const usage = asObject(last.usage);
      const text = str(last.result);
      return {
        ...(last.is_error === true
          ? { error: text ?? str(last.subtype) ?? "claude failed" }
          : { output: text }),
        tokens: tokens(num(usage?.input_tokens), num(usage?.output_tokens)),
        cost_usd: num(last.total_cost_usd) ?? num(last.cost_usd),
      };
    },
  },
  codex: {
    // A job's work dir is no git repository; codex exec refuses to run outside one without this flag.
    base: ["exec", "--json", "--skip-git-repo-check"],
    modelFlag: "--model",
    safe: ["--sandbox", "workspace-write"],
    dangerous: ["--dangerously-bypass-approvals-and-sandbox"],
    prompt: (prompt) => ["--", prompt],
    parse: (events) => {
      const messages = events
        .filter((e) => e.type === "item.completed")
        .map((e) => asObject(e.item))
        .filter((item) => item?.type === "agent_message" || item?.item_type === "assistant_message");
      const usages = events.filter((e) => e.type === "turn.completed").map((e) => asObject(e.usage));
      const failed = events.filter((e) => e.type === "turn.failed" || e.type === "error").at(-1);
      if (messages.length === 0 && usages.length === 0 && !failed) return undefined;
      const sum = (key: string) => usages.reduce<number | undefined>(addField(key), undefined);
      return {
        output: str(messages.at(-1)?.text),
        tokens: tokens(sum("input_tokens"), sum("output_tokens")),
        ...(failed ? { error: errorText(failed.error ?? failed.message ?? "codex failed") } : {}),
      };
    },
  },
  gemini: {
    base: ["--output-format", "json"],
    modelFlag: "--model",
    safe: ["--approval-mode", "auto_edit"],
    dangerous: ["--approval-mode", "yolo"],
    prompt: (prompt) => [`--prompt=${prompt}`],
    parse: (events) => {
      const last = events.filter((e) => "response" in e || "error" in e).at(-1);
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
  },
};

/** The argv of a headless run; the executable is looked up on PATH by its name. */
export function commandFor(tool: Tool, options: CommandOptions): { command: string; args: string[] } {
  const engine = ENGINES[tool];
  return {
    command: tool,
    args: [
      ...engine.base,
      ...(options.model ? [engine.modelFlag, options.model] : []),
      ...(options.allowDangerousFlags ? engine.dangerous : engine.safe),
      ...engine.prompt(options.prompt),
    ],
  };
}

/** How much of unstructured stdout becomes the output. */
const FALLBACK_OUTPUT_CHARS = 4096;

/**
 * Reads the CLI's JSON answer (claude: one result object; codex: JSONL events; gemini: one object with
 * `response` and `stats`). Never throws: output that holds no recognisable JSON gives the end of stdout.
 */
export function parseResult(tool: Tool, stdout: string): ParsedResult {
  const parsed = ENGINES[tool].parse(jsonObjects(stdout));
  if (parsed) return withoutUndefined(parsed);
  const text = stdout.trim();
  return text ? { output: text.slice(-FALLBACK_OUTPUT_CHARS) } : {};
}

/** The whole text as one JSON object, or else each line that is one (JSONL, or JSON after log lines). */
function jsonObjects(text: string): Json[] {
  const whole = tryJson(text.trim());
  if (whole) return [whole];
  return text.split("\n").flatMap((line) => {
    const value = tryJson(line.trim());
    return value ? [value] : [];
  });
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
/** An error as text: a string as is, else its `message`, else its JSON. */
const errorText = (value: unknown) => str(value) ?? str(asObject(value)?.message) ?? JSON.stringify(value);
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

// ---- Rate limits ----------------------------------------------------------------------------------

/** A rate-limit or usage-limit answer, in the words the three CLIs and their APIs use. */
const RATE_LIMIT = new RegExp(
  [
    /rate[ _-]?limit(?!ing|er)/, // "rate limit", "rate_limit_error", "rate-limited"; not "rate limiting"
    /usage[ _]limit|(?:session|weekly) limit|hit your limit/, // subscription limits (Claude, Codex)
    /too many requests|(?:status|code|error|http)\W{0,3}429\b/, // HTTP 429, not any "429"
    /quota (?:exceeded|exhausted)|exceeded your (?:current )?quota|exhausted your (?:\w+ )?(?:capacity|quota)/,
    /resource_exhausted|resource has been exhausted/, // Gemini API
  ]
    .map((part) => part.source)
    .join("|"),
  "i",
);

const UNIT_SECONDS: Record<string, number> = { d: 86_400, h: 3600, m: 60, s: 1 };

/** Each form of reset time, as the dates it reads in text order. */
const RESET_FORMS: ((text: string, now: Date) => (Date | undefined)[])[] = [
  // An epoch in seconds: Claude's `…usage limit reached|1749924000`, or `"resets_at": 1749924000`.
  (text) =>
    [...text.matchAll(/(?:\||resets?_at"?\s*[:=]\s*)(\d{10})\b/gi)].map((m) => new Date(Number(m[1]) * 1000)),
  // ISO-8601; without an offset it is UTC.
  (text) =>
    [...text.matchAll(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?/gi)].map(
      ([iso, offset]) => new Date(offset ? iso : `${iso}Z`),
    ),
  // A delay: `try again in 2 days 3 hours 5 minutes`, `retry after 120 seconds`, `reset after 2h30m12s`.
  (text, now) =>
    [
      ...text.matchAll(
        /(?:try again|retry|resets?)\s+(?:in|after)\s+((?:\d+(?:\.\d+)?\s*(?:days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)(?![a-z])[\s,]*(?:and\s+)?)+)/gi,
      ),
      ...[...text.matchAll(/retry-after:\s*(\d+)\s*$/gim)].map((m) => [m[0], `${m[1]}s`]),
    ].map(([, delay]) => {
      let seconds = 0;
      for (const [, amount, unit] of (delay ?? "").matchAll(/(\d+(?:\.\d+)?)\s*([dhms])/gi))
        seconds += Number(amount) * (UNIT_SECONDS[unit?.toLowerCase() ?? ""] ?? 0);
      return new Date(now.getTime() + seconds * 1000);
    }),
  // A clock time: `resets 3pm`, `resets at 15:00 (UTC)`, `resets 8:30pm (Asia/Tokyo)`, `try again at 9:30 AM`.
  (text, now) =>
    [
      ...text.matchAll(
        /(?:resets?(?:\s+at)?|try again at)\s+(\d{1,2})(?::(\d{2}))?\s*(?:([ap])\.?m(?![a-z])\.?)?(?:\s*\(([^)]+)\))?/gi,
      ),
    ].map(([, h, m, meridiem, zone]) => {
      const [hour, minute] = [Number(h), Number(m ?? 0)];
      if ((m === undefined && !meridiem) || hour > (meridiem ? 12 : 23) || minute > 59) return undefined;
      const hour24 = meridiem ? (hour % 12) + (meridiem.toLowerCase() === "p" ? 12 : 0) : hour;
      return nextClockTime(hour24, minute, zone, now);
    }),
];

/**
 * Recognises a rate-limit answer in a CLI's stdout/stderr and, when the text says when it ends, the reset
 * time as an absolute date. Forms, tried in this order, the first date after `now` wins (so a stale
 * timestamp in a log line is skipped):
 * - an epoch in seconds after `|` (Claude's `Claude AI usage limit reached|1749924000`) or `resets_at`;
 * - an ISO-8601 time (`resets 2026-11-27T18:00:00Z`; no offset means UTC);
 * - a delay after "try again / retry / reset(s) in|after" (`try again in 2 days 3 hours 5 minutes`,
 *   `retry after 120 seconds`, `reset after 2h30m12s`), or a `Retry-After: 120` header line;
 * - a clock time after "reset(s) (at)" or "try again at" (`resets 3pm`, `resets at 15:00 (UTC)`,
 *   `resets 8:30pm (Asia/Tokyo)`): the next such time after `now` in the IANA zone given in parentheses,
 *   else in UTC.
 * Month-name dates ("try again at Jul 5th, 2026 8:19 PM") are not read: the limit is recognised without
 * a reset time.
 */
export function detectRateLimit(text: string, now: Date): { resetAt?: Date } | undefined {
  if (!RATE_LIMIT.test(text)) return undefined;
  for (const form of RESET_FORMS)
    for (const resetAt of form(text, now)) if (resetAt && resetAt > now) return { resetAt };
  return {};
}

/** The first instant after `now` when the wall clock in `zone` (IANA; UTC if unknown or absent) reads h:m. */
function nextClockTime(hour: number, minute: number, zone: string | undefined, now: Date): Date {
  const offset = zoneOffsetMs(zone, now);
  const local = new Date(now.getTime() + offset);
  const candidate =
    Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate(), hour, minute) - offset;
  return new Date(candidate > now.getTime() ? candidate : candidate + 86_400_000);
}

/** How far the zone's wall clock is ahead of UTC at `at` (0 for UTC, an unknown zone, or none). */
function zoneOffsetMs(zone: string | undefined, at: Date): number {
  if (!zone) return 0;
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat("en-US", {
      timeZone: zone.trim(),
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    }).formatToParts(at);
  } catch {
    return 0; // not a zone Intl knows
  }
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const wall = Date.UTC(
    part("year"),
    part("month") - 1,
    part("day"),
    part("hour"),
    part("minute"),
    part("second"),
  );
  return wall - (at.getTime() - at.getMilliseconds());
}
