import * as z from "zod";
import { ValidationError } from "./errors.ts";
import { dailyBudget, LIMITS, label, POOL_TOOLS, poolName, type Tool } from "./fields.ts";
import { POD_LAUNCH_TIMEOUT_SECONDS } from "./names.ts";

/**
 * What a pool accepts (core/policies.ts): the namespaces, the tag values (each key listed must be on the
 * task, with one of its values), and at most this timeout (seconds), priority and prompt size (bytes).
 */
const policySchema = z.strictObject({
  namespaces: z.array(label(LIMITS.labelLength)).min(1).optional(),
  tags: z.record(z.string(), z.array(z.string()).min(1)).optional(),
  max_timeout: z.number().int().min(1).optional(),
  max_priority: z.number().int().min(1).max(9).optional(),
  max_prompt_bytes: z.number().int().min(1).optional(),
});
export type PoolPolicy = z.output<typeof policySchema>;

const poolSchema = z
  .strictObject({
    name: poolName,
    /** A CLI, or `container`: the pool runs pod jobs, each in a container of its own (ECS RunTask). */
    tool: z.enum(POOL_TOOLS),
    /** The CLI account whose credentials the pool's workers hold; container pools have none. */
    account: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, "must match [A-Za-z0-9_-]{1,64}")
      .optional(),
    max_concurrency: z.number().int().min(1).max(10_000),
    lease_seconds: z.number().int().min(10).max(3600).default(120),
    retry: z
      .strictObject({
        base_seconds: z.number().int().min(1).default(30),
        max_seconds: z.number().int().min(1).default(300),
      })
      .refine((r) => r.max_seconds >= r.base_seconds, { message: "max_seconds must be ≥ base_seconds" })
      .default({ base_seconds: 30, max_seconds: 300 }),
    allow_dangerous_flags: z.boolean().default(false),
    /**
     * A subscription account may go on past its limit on paid overage. Off by default: a run that reports
     * overage limits the account until its window resets, so nothing is spent that nobody chose to spend.
     */
    allow_overage: z.boolean().default(false),
    /**
     * A CLI task's retry takes up the CLI session its failed, timed-out or lost run left (saved to S3 with
     * the run) instead of starting over, unless the task says `resume: false`.
     */
    resume: z.boolean().default(false),
    /** The pool's daily spend limit (core/budgets.ts): past it, it admits nothing until the next UTC day. */
    budget: dailyBudget.optional(),
    policy: policySchema.optional(),
    /** Priority aging: a queued task's priority rises one step for each this many seconds it waits. */
    aging_seconds: z.number().int().min(1).max(86_400).optional(),
    /** The wait (seconds, submission to start) that this share of its tasks should stay within (core/slas.ts). */
    sla: z
      .strictObject({
        max_wait_seconds: z.number().min(0.1).max(86_400),
        percentile: z.number().gt(0).lt(100).default(90),
      })
      .optional(),
    worker: z
      .strictObject({
        cpu: z.number().int().default(1024),
        memory: z.number().int().default(2048),
        min: z.number().int().min(0).default(0),
        /** 0: no Fargate workers (none locally either); self-hosted workers (POST /v2/workers) serve it. */
        max: z.number().int().min(0).default(1),
        slots: z.number().int().min(1).max(64).default(1),
      })
      .refine((w) => w.max >= w.min, { message: "max must be ≥ min" })
      .default({ cpu: 1024, memory: 2048, min: 0, max: 1, slots: 1 }),
  })
  .superRefine((pool, ctx) => {
    if (pool.tool !== "container" && pool.account === undefined) {
      ctx.addIssue({ code: "custom", path: ["account"], message: `a ${pool.tool} pool names its account` });
    }
    // A pod's dispatch stays hidden on the queue for lease_seconds, which its launch must fit in.
    if (pool.tool === "container" && pool.lease_seconds < POD_LAUNCH_TIMEOUT_SECONDS) {
      ctx.addIssue({
        code: "custom",
        path: ["lease_seconds"],
        message: `a container pool's lease is at least ${POD_LAUNCH_TIMEOUT_SECONDS} s (a pod's launch)`,
      });
    }
  });

/**
 * The API stage's throttle, all tenants together (API Gateway's token bucket: a steady rate and a burst),
 * in front of the per-tenant limits: by default 1,000 requests a second run at 80 % of it. An AWS
 * account's default is 10,000 a second across its APIs.
 */
export const API_THROTTLE_DEFAULT = { rate_per_second: 1250, burst: 2500 };
const apiSchema = z.strictObject({
  throttle: z
    .strictObject({
      rate_per_second: z.number().int().min(1).max(10_000).default(API_THROTTLE_DEFAULT.rate_per_second),
      burst: z.number().int().min(1).max(5_000).default(API_THROTTLE_DEFAULT.burst),
    })
    .default(API_THROTTLE_DEFAULT),
});

/**
 * A concurrency scope (core/scopes.ts): every task of a tool (`tool:claude`) or of a model
 * (`model:<name>`, as tasks name it), across all pools.
 */
const SCOPE_NAME = new RegExp(`^(tool:(${POOL_TOOLS.join("|")})|model:\\S{1,128})$`);
const concurrencyLimits = z
  .record(z.string(), z.number().int().min(1).max(10_000))
  .superRefine((limits, ctx) => {
    for (const scope of Object.keys(limits).filter((name) => !SCOPE_NAME.test(name))) {
      ctx.addIssue({
        code: "custom",
        path: [scope],
        message: `must be tool:<${POOL_TOOLS.join("|")}> or model:<name>`,
      });
    }
  });

const configSchema = z.strictObject({
  api: apiSchema.default({ throttle: API_THROTTLE_DEFAULT }),
  /** At most this many tasks of each scope hold a slot (dispatched or running) at once, over all pools. */
  concurrency_limits: concurrencyLimits.default({}),
  pools: z
    .array(poolSchema)
    .min(1)
    .refine((pools) => new Set(pools.map((p) => p.name)).size === pools.length, {
      message: "pool names must be unique",
    }),
});

export type PoolConfig = z.output<typeof poolSchema>;
/** A pool of a CLI: its workers run the CLI with its account's credentials. */
export type CliPool = PoolConfig & { tool: Tool; account: string };
export const isCliPool = (pool: PoolConfig): pool is CliPool => pool.tool !== "container";
export type ApiThrottle = z.output<typeof apiSchema>["throttle"];
export type SchedulerConfig = z.output<typeof configSchema>;

/** A CLI pool with workers of its own (Fargate, or the local stack's); at worker.max 0 only self-hosted ones serve it. */
export const hasManagedWorkers = (pool: PoolConfig): pool is CliPool =>
  isCliPool(pool) && pool.worker.max > 0;

/**
 * What a valid config still gets wrong: a CLI pool that admits more tasks (max_concurrency) than its
 * workers can run at most (worker.max × worker.slots) holds slots for tasks no worker takes until others
 * end, so it runs fewer than it admits. A pool only self-hosted workers serve has capacity the config
 * does not know.
 */
export function capacityWarnings(config: SchedulerConfig): string[] {
  return config.pools.filter(hasManagedWorkers).flatMap((pool) => {
    const capacity = pool.worker.max * pool.worker.slots;
    return pool.max_concurrency > capacity
      ? [
          `pool ${pool.name}: max_concurrency ${pool.max_concurrency} exceeds what its workers hold ` +
            `(worker.max ${pool.worker.max} × worker.slots ${pool.worker.slots} = ${capacity})`,
        ]
      : [];
  });
}

/** Validates a scheduler config (parsed from YAML or JSON); errors name the source and the bad field's path. */
export function schedulerConfigOf(raw: unknown, source: string): SchedulerConfig {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join(".") || "(root)";
    throw new ValidationError(`${source}: ${path}`, issue?.message ?? "invalid");
  }
  return parsed.data;
}
