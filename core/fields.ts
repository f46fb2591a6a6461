/**
 * The rules of the fields that requests and stored records share: tools, limits and defaults, labels,
 * paths, tags, pool names and scopes, each written once.
 */
import * as z from "zod";

export const TOOLS = ["claude", "codex", "gemini"] as const;
export type Tool = (typeof TOOLS)[number];
/** What a pool runs: one of the CLIs, or container jobs (pods). */
export const POOL_TOOLS = [...TOOLS, "container"] as const;
export type PoolTool = (typeof POOL_TOOLS)[number];

export const LIMITS = {
  nameLength: 256,
  labelLength: 128,
  promptBytes: 100_000,
  modelLength: 200,
  tagCount: 50,
  tagKeyLength: 128,
  tagValueLength: 256,
  inputFiles: 100,
  inputFileBytes: 200_000,
  outputFiles: 100,
  pathLength: 512,
  maxAttempts: 20,
  timeoutSeconds: 86_400,
  pageSize: 100,
  /** A page cursor: a merged listing's holds a position in each of its shards (a tenant's runs: 16). */
  cursorLength: 8192,
  /** A callback URL, a run id in a query. */
  urlLength: 2048,
  runIdLength: 128,
} as const;

export const DEFAULTS = { priority: 5, maxAttempts: 3, timeoutSeconds: 3600, pageSize: 20 } as const;

/** A tenant's limits when it was created without them (or before they existed). */
export const TENANT_DEFAULTS = {
  rate_limit_per_minute: 100,
  max_queued_tasks: 1000,
  max_submissions_per_minute: 60,
} as const;

/**
 * Names, tags and paths hold no control characters (prompts and file contents may), no lone surrogate
 * halves (not valid Unicode), and no bidirectional overrides or isolates, which make a name display as
 * something else ("Trojan Source"). Any other Unicode (accents, CJK, emoji, joiners) is kept as sent.
 */
export const noControlChars = (s: string) => !/[\p{Cc}\p{Cs}\u202A-\u202E\u2066-\u2069]/u.test(s);
export const CONTROL_CHARS =
  "must not contain control, bidirectional-override or unpaired surrogate characters";
/** Keys refused in any request: a merge that trusted them would reach an object's prototype. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);
export const label = (max: number) => z.string().min(1).max(max).refine(noControlChars, CONTROL_CHARS);

/** A relative path inside the job's work dir: no `..` segment, no absolute path, no backslash. */
export const relativePath = z
  .string()
  .min(1)
  .max(LIMITS.pathLength)
  .refine(noControlChars, CONTROL_CHARS)
  .refine(
    (p) => !p.startsWith("/") && !p.includes("\\") && p.split("/").every((seg) => seg !== ".." && seg !== ""),
    "must be a relative path without '..' or empty segments",
  );

/** Tags: an object, or a `k=v,k2=v2` string. */
export const tagsSchema = z.preprocess(
  (value, ctx) => {
    if (typeof value !== "string") return value;
    const tags: Record<string, string> = {};
    for (const pair of value.split(",").filter((p) => p.trim() !== "")) {
      const eq = pair.indexOf("=");
      if (eq <= 0) {
        ctx.addIssue({ code: "custom", message: `'${pair}' is not k=v`, input: value });
        return z.NEVER;
      }
      const key = pair.slice(0, eq).trim();
      if (RESERVED_KEYS.has(key)) {
        ctx.addIssue({ code: "custom", message: `'${key}' is a reserved name`, input: value });
        return z.NEVER;
      }
      tags[key] = pair.slice(eq + 1).trim();
    }
    return tags;
  },
  z
    .record(
      label(LIMITS.tagKeyLength).refine((k) => !RESERVED_KEYS.has(k), "is a reserved name"),
      z.string().max(LIMITS.tagValueLength).refine(noControlChars, CONTROL_CHARS),
    )
    .refine((t) => Object.keys(t).length <= LIMITS.tagCount, `at most ${LIMITS.tagCount} tags`),
);
export type Tags = Record<string, string>;

/** A number, or a string holding one (clients of the v2 API send `"timeout": "600"`). */
export const numeric = (inner: z.ZodNumber) =>
  z.union([
    inner,
    z
      .string()
      .regex(/^\s*\d+\s*$/, "must be a number")
      .transform(Number)
      .pipe(inner),
  ]);

/** What a recurring task does when an occurrence falls due while the previous one is still going. */
export const OVERLAPS = ["skip", "queue"] as const;

/** Pool names end up in queue names (`switchyard-<pool>-dlq.fifo` ≤ 80 characters). */
export const poolName = z.string().regex(/^[a-z0-9-]{1,60}$/, "must match [a-z0-9-]{1,60}");

/** Scopes a tenant key may hold (a new key holds both); `admin` belongs to the admin key alone. */
export const TENANT_SCOPES = ["tasks:read", "tasks:write"] as const;
/** What the admin key holds. */
export const ADMIN_SCOPES = [...TENANT_SCOPES, "admin"] as const;
/** Every scope; `worker` belongs to a self-hosted worker's key alone (its pool's work, and nothing else). */
export const SCOPES = [...ADMIN_SCOPES, "worker"] as const;
export type Scope = (typeof SCOPES)[number];

/**
 * A daily spend limit (UTC days): dollars as the CLIs report them, tokens in and out. A tenant's also says
 * what happens past it: its tasks `wait` for the next day (or for spend to be settled lower), or new
 * submissions are refused.
 */
export const dailyBudget = z.strictObject({
  usd_per_day: z.number().positive().max(1_000_000).optional(),
  tokens_per_day: z.number().int().positive().max(1e12).optional(),
});
export const tenantBudget = dailyBudget.extend({ on_exceed: z.enum(["wait", "refuse"]).default("wait") });
export type DailyBudget = z.output<typeof dailyBudget>;
export type TenantBudget = z.output<typeof tenantBudget>;
