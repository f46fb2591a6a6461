import { z } from "zod";
import { type RunStatus, type TaskStatus, TERMINAL_STATUSES } from "./status.ts";

export const TOOLS = ["claude", "codex", "gemini"] as const;
export type Tool = (typeof TOOLS)[number];

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
  /** A page cursor, a callback URL, a run id in a query. */
  cursorLength: 2048,
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
const noControlChars = (s: string) => !/[\p{Cc}\p{Cs}\u202A-\u202E\u2066-\u2069]/u.test(s);
const CONTROL_CHARS = "must not contain control, bidirectional-override or unpaired surrogate characters";
/** Keys refused in any request: a merge that trusted them would reach an object's prototype. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);
const label = (max: number) => z.string().min(1).max(max).refine(noControlChars, CONTROL_CHARS);

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

/** The next version of a task or run with `tags` merged in (new values win). */
export const withMergedTags = <T extends { version: number; tags: Tags; update_time: string }>(
  record: T,
  tags: Tags,
  now: Date,
): T => ({
  ...record,
  version: record.version + 1,
  tags: { ...record.tags, ...tags },
  update_time: now.toISOString(),
});

/** A number, or a string holding one (clients of the v2 API send `"timeout": "600"`). */
const numeric = (inner: z.ZodNumber) =>
  z.union([
    inner,
    z
      .string()
      .regex(/^\s*\d+\s*$/, "must be a number")
      .transform(Number)
      .pipe(inner),
  ]);

/** Pool names end up in queue names (`switchyard-<pool>-dlq.fifo` ≤ 80 characters). */
/** What a recurring task does when an occurrence falls due while the previous one is still going. */
export const OVERLAPS = ["skip", "queue"] as const;
export type Overlap = (typeof OVERLAPS)[number];

export const poolName = z.string().regex(/^[a-z0-9-]{1,60}$/, "must match [a-z0-9-]{1,60}");

export const submitTaskSchema = z
  .strictObject({
    tool: z.enum(TOOLS).optional(),
    model: label(LIMITS.modelLength).optional(),
    prompt: z
      .string()
      .min(1)
      .refine((p) => Buffer.byteLength(p) <= LIMITS.promptBytes, `at most ${LIMITS.promptBytes} bytes`)
      // The prompt reaches the CLI as an argument, and no argument can hold a NUL.
      .refine((p) => !p.includes("\u0000"), "must not contain NUL characters"),
    input_files: z
      .array(
        z.strictObject({
          name: relativePath,
          content: z
            .string()
            .refine(
              (c) => Buffer.byteLength(c) <= LIMITS.inputFileBytes,
              `at most ${LIMITS.inputFileBytes} bytes`,
            ),
        }),
      )
      .max(LIMITS.inputFiles)
      .refine((files) => new Set(files.map((f) => f.name)).size === files.length, "names must be unique")
      .default([]),
    output_files: z.array(relativePath).max(LIMITS.outputFiles).default([]),
    pool: poolName.optional(),
    priority: numeric(z.number().int().min(1).max(9)).optional(),
    prior: numeric(z.number().int().min(1).max(9)).optional(),
    name: label(LIMITS.nameLength).optional(),
    namespace: label(LIMITS.labelLength).default("default"),
    project: label(LIMITS.labelLength).optional(),
    tags: tagsSchema.default({}),
    idempotency_key: label(LIMITS.labelLength).optional(),
    concurrency_key: label(LIMITS.labelLength).optional(),
    max_attempts: numeric(z.number().int().min(1).max(LIMITS.maxAttempts)).default(DEFAULTS.maxAttempts),
    timeout: numeric(z.number().int().min(1).max(LIMITS.timeoutSeconds)).default(DEFAULTS.timeoutSeconds),
    callback: z
      .url({ protocol: /^https?$/ })
      .max(LIMITS.urlLength)
      .optional(),
    scheduled_at: z.iso.datetime({ offset: true }).optional(),
    schedule: z.string().max(200).optional(),
    timezone: z.string().max(64).optional(),
    interval: numeric(
      z
        .number()
        .int()
        .min(1)
        .max(366 * 86_400),
    ).optional(),
    valid_time_range: z.tuple([z.number().int(), z.number().int()]).optional(),
    end_time: z.iso.datetime({ offset: true }).optional(),
    times: numeric(z.number().int().min(1).max(1_000_000)).optional(),
    // One occurrence runs at a time per task, so `allow` (overlapping occurrences) is not offered.
    overlap: z.enum(OVERLAPS).optional(),
  })
  .refine((b) => b.tool !== undefined || b.pool !== undefined, {
    path: ["tool"],
    message: "give tool, pool, or both",
  })
  .refine((b) => b.priority === undefined || b.prior === undefined || b.priority === b.prior, {
    path: ["prior"],
    message: "prior is an alias of priority; give one, or the same value",
  })
  .transform(({ prior, priority, ...rest }) => ({
    ...rest,
    priority: priority ?? prior ?? DEFAULTS.priority,
  }));
export type SubmitTaskInput = z.input<typeof submitTaskSchema>;
export type SubmitTask = z.output<typeof submitTaskSchema>;

export const listTasksQuerySchema = z.strictObject({
  status: z.string().optional(),
  pool: poolName.optional(),
  namespace: label(LIMITS.labelLength).optional(),
  tag: z
    .string()
    .max(LIMITS.tagKeyLength + 1 + LIMITS.tagValueLength)
    .regex(/^[^=]+=.*$/, "must be k=v")
    .refine(noControlChars, CONTROL_CHARS)
    .transform((s) => {
      const eq = s.indexOf("=");
      return { key: s.slice(0, eq), value: s.slice(eq + 1) };
    })
    .refine(({ key }) => key.length <= LIMITS.tagKeyLength, `key: at most ${LIMITS.tagKeyLength} characters`)
    .optional(),
  size: numeric(z.number().int().min(1).max(LIMITS.pageSize)).default(DEFAULTS.pageSize),
  cursor: z.string().max(LIMITS.cursorLength).optional(),
  tenant: label(LIMITS.labelLength).optional(),
});
export type ListTasksQuery = z.output<typeof listTasksQuerySchema>;

export const mergeTagsSchema = z.strictObject({ tags: tagsSchema });

export const createTenantSchema = z.strictObject({
  name: label(LIMITS.labelLength),
  /** Requests per minute over all of the tenant's keys (429 past it). */
  rate_limit_per_minute: numeric(z.number().int().min(1).max(1_000_000)).default(
    TENANT_DEFAULTS.rate_limit_per_minute,
  ),
  /** Tasks waiting for capacity at once; a submission past it is a 409 (code 1005). */
  max_queued_tasks: numeric(z.number().int().min(1).max(1_000_000)).default(TENANT_DEFAULTS.max_queued_tasks),
  /** Submissions per minute (429 past it); idempotent replays do not count. */
  max_submissions_per_minute: numeric(z.number().int().min(1).max(1_000_000)).default(
    TENANT_DEFAULTS.max_submissions_per_minute,
  ),
});
export type CreateTenant = z.output<typeof createTenantSchema>;

/** Scopes a tenant key may hold (a new key holds both); `admin` belongs to the admin key alone. */
export const TENANT_SCOPES = ["tasks:read", "tasks:write"] as const;
export const addKeySchema = z.strictObject({
  scopes: z
    .array(z.enum(TENANT_SCOPES))
    .min(1)
    .refine((s) => new Set(s).size === s.length, "must not repeat a scope")
    .optional(),
});

export interface TaskResult {
  exit_code?: number;
  output?: string;
  files?: string[];
  tokens?: { input?: number; output?: number; total?: number };
  cost_usd?: number;
}

/** The stored task. Times are ISO-8601 strings. */
export interface Task {
  uuid: string;
  /** Optimistic-lock counter: every write expects the version it read. */
  version: number;
  tenant: string;
  name?: string;
  namespace: string;
  project?: string;
  tags: Tags;
  tool: Tool;
  model?: string;
  prompt: string;
  input_files: string[];
  output_files: string[];
  pool: string;
  priority: number;
  status: TaskStatus;
  attempt: number;
  max_attempts: number;
  occurrence: number;
  run_id?: string;
  /** Runs created so far; numbers the next run id. */
  run_count?: number;
  timeout: number;
  idempotency_key?: string;
  concurrency_key?: string;
  callback?: string;
  scheduled_at?: string;
  /** Recurrence (see core/recurrence.ts): `schedule` or `interval`, limited by the rest. */
  schedule?: string;
  interval?: number;
  timezone?: string;
  valid_time_range?: [number, number];
  /** Submitted as `end_time`; renamed because a task's own `end_time` is when it ended. */
  schedule_end_time?: string;
  times?: number;
  overlap?: Overlap;
  /** Occurrences fired so far, skipped ones included (`times` counts these). */
  fired_count?: number;
  /** The slot of the last occurrence fired. */
  last_run_time?: string;
  /** An occurrence fell due while the previous one was going (overlap `queue`): it runs when that ends. */
  occurrence_waiting?: boolean;
  /** A reorder moved next_run_time away from this slot; the cadence resumes after it. */
  reorder_slot?: string;
  /** Set by pause: nothing new fires or is admitted. A running occurrence may finish. */
  paused_at?: string;
  /** The status a paused task goes back to on resume. */
  paused_from?: "scheduled" | "queued";
  create_time: string;
  update_time: string;
  /** When the task last became ready; orders the ready queue within a priority. */
  ready_time?: string;
  start_time?: string;
  end_time?: string;
  next_run_time?: string;
  /** While running: the worker's lease; a worker that stops heartbeating loses the run when it passes. */
  lease_expires_at?: string;
  /** Rate-limit answers retried so far without using an attempt. */
  rate_limit_retries?: number;
  /** When the tick must look at the task next: a delayed start, a retry, an unconfirmed dispatch, a lease. */
  due_time?: string;
  result?: TaskResult;
  error_message?: string;
  /** The latest callback delivery attempts, oldest first (core/callbacks.ts keeps the last 20). */
  callback_deliveries?: CallbackDelivery[];
}

/** One attempt to POST a run's outcome to the task's callback URL. */
export interface CallbackDelivery {
  time: string;
  /** The event delivered (core/events.ts) and its type, e.g. `run.succeeded`. */
  event_id: string;
  type: string;
  run_id?: string;
  /** 1 for the first try of this event, then 2, … */
  attempt: number;
  /** delivered; retry: tried again later; failed: given up (refused, gone, or out of attempts). */
  outcome: "delivered" | "retry" | "failed";
  http_status?: number;
  error?: string;
}

export const isRecurring = (task: Task) => task.schedule !== undefined || task.interval !== undefined;

/**
 * When the tick must look at a task next (the due index's key): its `due_time` (a delayed start, a retry,
 * an unconfirmed dispatch, a lease), or for a recurring task its next occurrence, unless that waits
 * (paused, or queued behind the running one). A paused or finished task is never due.
 */
export function dueAt(task: Task): string | undefined {
  if (task.status === "paused" || TERMINAL_STATUSES.includes(task.status)) return undefined;
  const fires =
    isRecurring(task) && !task.paused_at && !task.occurrence_waiting ? task.next_run_time : undefined;
  if (task.due_time === undefined) return fires;
  return fires !== undefined && fires < task.due_time ? fires : task.due_time;
}

export interface Run {
  run_id: string;
  version: number;
  task_uuid: string;
  tenant: string;
  pool: string;
  attempt: number;
  occurrence: number;
  status: RunStatus;
  tags: Tags;
  worker?: string;
  create_time: string;
  update_time: string;
  start_time?: string;
  end_time?: string;
  exit_code?: number;
  latency_ms?: number;
  tokens?: TaskResult["tokens"];
  cost_usd?: number;
  output_tail?: string;
  /** The log was short enough to be all of output_tail: it is kept on the run, not in S3. */
  log_inline?: boolean;
  error?: string;
}

/** A worker process, as it last reported itself. */
export interface WorkerRecord {
  worker_id: string;
  pool: string;
  slots: number;
  /** Jobs it was running when it reported. */
  running: number;
  started_at: string;
  last_seen: string;
  /** Epoch seconds: the record expires (DynamoDB TTL) once the worker stops reporting. */
  expires_at: number;
}

/** Every scope: the admin key holds them all. */
export const SCOPES = [...TENANT_SCOPES, "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export interface Tenant {
  id: string;
  name: string;
  rate_limit_per_minute: number;
  /** Absent on tenants created before quotas existed: TENANT_DEFAULTS apply. */
  max_queued_tasks?: number;
  max_submissions_per_minute?: number;
  create_time: string;
}

export interface ApiKeyRecord {
  key_id: string;
  tenant_id: string;
  /** SHA-256 of the key, hex. The key itself is never stored. */
  key_hash: string;
  scopes: Scope[];
  create_time: string;
  revoked_time?: string;
}
