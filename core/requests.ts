/** The HTTP routes' request bodies and query strings. */
import * as z from "zod";
import {
  CONTROL_CHARS,
  DEFAULTS,
  LIMITS,
  label,
  noControlChars,
  numeric,
  OVERLAPS,
  poolName,
  relativePath,
  TENANT_DEFAULTS,
  TENANT_SCOPES,
  TOOLS,
  tagsSchema,
  tenantBudget,
} from "./fields.ts";
import { WORKER_CLAIM_WAIT_SECONDS } from "./names.ts";
import { podQuotas } from "./pods.ts";
import { workerResources } from "./records.ts";
import { RUN_STATUSES, TASK_STATUSES } from "./status.ts";

/** What an LLM CLI job is: the fields of a submission that a `prompt` or `agent` template renders to. */
const cliJobFields = {
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
  /** A pool, or a pattern of pools (`claude-*`): then the one of them where it starts soonest. */
  pool: z
    .string()
    .regex(/^[a-z0-9*-]{1,60}$/, "must be a pool name ([a-z0-9-]), or a pattern of them with * (claude-*)")
    .optional(),
};

/** A `prompt` or `agent` template's rendered job: the CLI job fields, nothing else. */
export const renderedCliJob = z.strictObject(cliJobFields);

/** An object, or the JSON text of one, as the v2 API sends a template's `value` and `extra`. */
export const objectOrJson = z.preprocess(
  (input, ctx) => {
    if (typeof input !== "string") return input;
    try {
      return JSON.parse(input);
    } catch {
      ctx.addIssue({ code: "custom", message: "not JSON: give an object, or the JSON text of one" });
      return z.NEVER;
    }
  },
  z.record(z.string(), z.unknown()),
);

const TEMPLATE_NAME = "[a-z0-9][a-z0-9._-]{0,99}";
export const templateName = z.string().regex(new RegExp(`^${TEMPLATE_NAME}$`), `must match ${TEMPLATE_NAME}`);
/** A template as a submission names it: `name`, or `name@revision`. */
export const TEMPLATE_REF = new RegExp(`^(${TEMPLATE_NAME})(?:@([1-9]\\d{0,5}))?$`);

/** A task's priority: 9 is admitted first. */
const priorityField = numeric(z.number().int().min(1).max(9));

export const submitTaskSchema = z
  .strictObject({
    ...cliJobFields,
    prompt: cliJobFields.prompt.optional(),
    template: z.string().regex(TEMPLATE_REF, "must be a template's name, or name@revision").optional(),
    value: objectOrJson.optional(),
    extra: objectOrJson.optional(),
    /** A pod's size ({cpu, memory, gpu}), over its template's. */
    quotas: podQuotas.optional(),
    /** The CLI's turns at most (claude's --max-turns). */
    max_turns: numeric(z.number().int().min(1).max(10_000)).optional(),
    /**
     * What a run may spend at most (claude's --max-budget-usd); a daily budget reserves this much while
     * the run goes (core/budgets.ts).
     */
    max_budget_usd: numeric(z.number().positive().max(100_000)).optional(),
    /** A retry takes up the CLI session the failed run left (default: the pool's `resume`). */
    resume: z.boolean().optional(),
    /** Only pools of this CLI account; `any` (as with none): whichever has headroom. */
    account: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, "must match [A-Za-z0-9_-]{1,64}")
      .optional(),
    priority: priorityField.optional(),
    prior: priorityField.optional(),
    name: label(LIMITS.nameLength).optional(),
    namespace: label(LIMITS.labelLength).default("default"),
    project: label(LIMITS.labelLength).optional(),
    tags: tagsSchema.default({}),
    idempotency_key: label(LIMITS.labelLength).optional(),
    concurrency_key: label(LIMITS.labelLength).optional(),
    /** Refused (409) while another open task of the tenant has its concurrency_key, and refuses any after it. */
    exclusive: z.boolean().optional(),
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
  .refine((b) => (b.prompt === undefined) !== (b.template === undefined), {
    path: ["prompt"],
    message: "give a prompt, or a template that renders one (not both)",
  })
  .refine(
    (b) =>
      b.template === undefined ||
      (b.tool === undefined && b.model === undefined && b.input_files.length + b.output_files.length === 0),
    {
      path: ["template"],
      message:
        "a template gives the job: tool, model, input_files and output_files come from it (pool may be given)",
    },
  )
  .refine((b) => !b.exclusive || b.concurrency_key !== undefined, {
    path: ["exclusive"],
    message: "is exclusive within a concurrency_key: give one",
  })
  .refine((b) => b.quotas === undefined || b.template !== undefined, {
    path: ["quotas"],
    message: "quotas size a pod job: give them with a pod template",
  })
  .refine((b) => b.template !== undefined || b.tool !== undefined || b.pool !== undefined, {
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
export type SubmitTask = z.output<typeof submitTaskSchema>;

export const listTasksQuery = z.strictObject({
  status: z.enum(TASK_STATUSES).optional(),
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
export type ListTasksQuery = z.output<typeof listTasksQuery>;

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

/** PATCH /v2/tenants/{id}: its daily budget, its fair-share weight (null: none, the default 1). */
export const patchTenantSchema = z
  .strictObject({
    budget: tenantBudget.nullable().optional(),
    weight: numeric(z.number().min(0.01).max(100)).nullable().optional(),
  })
  .refine((b) => b.budget !== undefined || b.weight !== undefined, {
    path: ["budget"],
    message: "give budget, weight, or both",
  });
export type PatchTenant = z.output<typeof patchTenantSchema>;

/** GET /v2/tenants/{id}/usage: the last `days` UTC days, today included. */
export const usageQuery = z.strictObject({ days: numeric(z.number().int().min(1).max(90)).default(7) });

export const addKeySchema = z.strictObject({
  scopes: z
    .array(z.enum(TENANT_SCOPES))
    .min(1)
    .refine((s) => new Set(s).size === s.length, "must not repeat a scope")
    .optional(),
});

export const listRunsQuery = z.strictObject({
  task_id: z.uuid().optional(),
  status: z.enum(RUN_STATUSES).optional(),
  size: z.coerce.number().int().min(1).max(LIMITS.pageSize).default(20),
  cursor: z.string().max(LIMITS.cursorLength).optional(),
  tenant: z.string().max(LIMITS.labelLength).optional(),
});

export const taskEventsQuery = z.strictObject({
  size: z.coerce.number().int().min(1).max(LIMITS.pageSize).default(50),
  cursor: z.string().max(LIMITS.cursorLength).optional(),
});

export const taskLogQuery = z.strictObject({ run_id: z.string().max(LIMITS.runIdLength).optional() });

/** A year either way. */
export const reorderBody = z.strictObject({
  priority_offset: z.number().int().min(-31_536_000).max(31_536_000),
});

export const dispatcherStatusQuery = z.strictObject({
  tenant: z.string().max(LIMITS.labelLength).optional(),
  /** The page of the tenant's running tasks. */
  size: numeric(z.number().int().min(1).max(LIMITS.pageSize)).default(DEFAULTS.pageSize),
  cursor: z.string().max(LIMITS.cursorLength).optional(),
});

/** `?verbose=true`: templates as objects, not names; a pool or queue with its details. */
export const verboseQuery = z.strictObject({
  verbose: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true"),
});
/** `?priority=`: the expected waits are for a new task of that priority (the submission default if absent). */
export const queuesQuery = z.strictObject({ priority: priorityField.default(DEFAULTS.priority) });
export const queueQuery = verboseQuery.extend(queuesQuery.shape);
/** `?revision=` reads that revision, not the latest. */
export const templateQuery = z.strictObject({ revision: z.coerce.number().int().min(1).optional() });

/** POST /v2/workers: a self-hosted worker of a CLI pool; `resources.slots` is how many jobs it runs at once. */
export const registerWorkerBody = z.strictObject({
  pool: poolName,
  host: label(LIMITS.labelLength).optional(),
  resources: workerResources
    .refine((r) => Object.keys(r).length <= 20, "at most 20 resources")
    .refine(
      (r) =>
        r.slots === undefined || (Number.isInteger(r.slots) && Number(r.slots) >= 1 && Number(r.slots) <= 64),
      "slots must be a whole number from 1 to 64",
    )
    .optional(),
});

/** POST /v2/worker/report: what a self-hosted worker runs now; `stopped` on its way out. */
export const workerReportBody = z.strictObject({
  jobs: z.array(z.string().max(LIMITS.runIdLength)).max(64),
  started_at: z.iso.datetime(),
  stopped: z.boolean().optional(),
});

/** POST /v2/worker/claims: up to `max` runs, waiting up to `wait_seconds` for a first one. */
export const claimWorkBody = z.strictObject({
  max: z.number().int().min(1).max(10),
  wait_seconds: z.number().int().min(0).max(WORKER_CLAIM_WAIT_SECONDS).default(0),
});

/** The longest texts a settle carries (characters); a worker cuts its texts to fit (core/work.ts). */
export const SETTLE_TEXT_LIMITS = { output: 200_000, error: 20_000, tail: 20_000 } as const;

/** A usage window as the CLIs name it: `five_hour`, `seven_day`, `seven_day_opus`. */
const usageWindow = z.string().regex(/^[a-z0-9_]{1,32}$/);

/** How a self-hosted worker's run ended: its CLI finished (`outcome`), or the stopping worker hands it back. */
export const settleWorkBody = z.union([
  z.strictObject({
    outcome: z.strictObject({
      exit_code: z.number().int().nullable(),
      error: z.string().max(SETTLE_TEXT_LIMITS.error).optional(),
      output: z.string().max(SETTLE_TEXT_LIMITS.output).optional(),
      tokens: z
        .strictObject({
          input: z.number().min(0).optional(),
          output: z.number().min(0).optional(),
          total: z.number().min(0).optional(),
        })
        .optional(),
      cost_usd: z.number().min(0).optional(),
      /** Output files uploaded for the run (POST …/uploads). */
      files: z.array(relativePath).max(LIMITS.outputFiles),
      tail: z.string().max(SETTLE_TEXT_LIMITS.tail),
      log_inline: z.boolean().optional(),
      duration_ms: z.number().min(0),
      rate_limit: z
        .strictObject({
          reset_at: z.iso.datetime().optional(),
          window: usageWindow.optional(),
          source: z.enum(["event", "message"]).default("message"),
        })
        .optional(),
      /** The CLI's latest report of its account's usage window (claude's rate_limit_event). */
      usage: z
        .strictObject({
          status: z.string().min(1).max(32),
          window: usageWindow.optional(),
          reset_at: z.iso.datetime().optional(),
          utilization: z.number().min(0).max(100).optional(),
          overage: z.boolean().optional(),
        })
        .optional(),
      session_id: z.string().min(1).max(128).optional(),
      /** The run whose saved session this run took up. */
      resumed_from: z.string().min(1).max(128).optional(),
      permanent: z.boolean().optional(),
    }),
  }),
  z.strictObject({ released: z.string().min(1).max(2_000) }),
]);
export type SettleWorkBody = z.output<typeof settleWorkBody>;

/** POST /v2/worker/runs/{run_id}/uploads: where to PUT the run's log and its output files. */
export const uploadsBody = z.strictObject({
  log: z.boolean().optional(),
  /** The task's saved CLI session, for its retry to take up. */
  session: z.boolean().optional(),
  files: z.array(relativePath).max(LIMITS.outputFiles).default([]),
});
