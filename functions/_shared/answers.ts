/**
 * What routes answer in the envelope's `data`, where it has a schema: the API document shows them, and
 * the SDK types its answers with them. Task and Run are named, so the document states them once.
 */
import * as z from "zod";
import { TOOLS } from "../../core/fields.ts";
import { runSchema, runViewSchema, taskSchema, taskViewSchema, workerResources } from "../../core/records.ts";
import { RUN_STATUSES, TASK_STATUSES } from "../../core/status.ts";
import { TOOL_ACCOUNT_STATES } from "../../core/tool-accounts.ts";

/** The named schemas of answers (OpenAPI components). */
export const NAMED_ANSWERS = z.registry<{ id: string }>();
NAMED_ANSWERS.add(taskViewSchema, { id: "Task" });
NAMED_ANSWERS.add(runViewSchema, { id: "Run" });

const taskStatus = z.enum(TASK_STATUSES);
const tags = z.record(z.string(), z.string());
/** A page of a list: the items under `field`, the count of all, and the cursor of the next page if any. */
const page = <Field extends string, Item extends z.ZodType>(field: Field, item: Item) =>
  z.object({ total: z.number(), next_cursor: z.string().nullable() }).extend({ [field]: z.array(item) } as {
    [K in Field]: z.ZodArray<Item>;
  });

const partStatus = z.enum(["ok", "degraded", "down"]);

/** A (tool, account) and its state (core/tool-accounts.ts toolAccountView). */
const toolAccountAnswer = z.object({
  tool: z.enum(TOOLS),
  account: z.string(),
  state: z.enum(TOOL_ACCOUNT_STATES),
  reset_at: z.string().nullable(),
  limit_source: z.enum(["rate_limit_event", "message", "overage"]).nullable(),
  window: z.string().nullable(),
  last_usage: z
    .object({
      time: z.string(),
      status: z.string(),
      window: z.string().optional(),
      utilization: z.number().optional(),
      resets_at: z.string().optional(),
      overage: z.boolean().optional(),
    })
    .nullable(),
  pools: z.array(z.string()),
});

export const ANSWERS = {
  submitted: z.object({
    uuid: z.string(),
    run_id: z.string().nullable(),
    status: taskStatus,
    ...taskViewSchema.pick({
      position: true,
      waiting_time_expect: true,
      waiting_time_error: true,
      waiting_reason: true,
      waiting_until: true,
    }).shape,
  }),
  task: taskViewSchema,
  tasks: page("tasks", taskViewSchema),
  taskStatus: z.object({ status: taskStatus }),
  reloaded: z.literal("reload OK"),
  slas: z.array(
    z.object({
      pool: z.string(),
      sla: z.object({ max_wait_seconds: z.number(), percentile: z.number() }).nullable(),
      measured_wait_s: z.number().nullable(),
      samples: z.number(),
      met: z.boolean().nullable(),
    }),
  ),
  toolAccount: toolAccountAnswer,
  toolAccounts: z.array(toolAccountAnswer),
  systemStatus: z.object({
    status: partStatus,
    components: z.array(z.object({ name: z.string(), status: partStatus, detail: z.string() })),
  }),
  /** What a reload changed (`path: before → after`) and what the config still gets wrong. */
  reloadedBeside: z.object({ changes: z.array(z.string()), warnings: z.array(z.string()) }),
  canceled: z.object({ uuid: z.string(), status: taskStatus }),
  taskTags: z.object({ uuid: z.string(), tags }),
  run: runViewSchema,
  runs: page("instances", runViewSchema),
  runStatus: z.object({ status: z.enum(RUN_STATUSES) }),
  runTags: z.object({ run_id: z.string(), tags }),
  workers: z.array(
    z.object({
      worker_id: z.string(),
      pool: z.string(),
      state: z.enum(["active", "draining", "offline"]),
      self_hosted: z.boolean(),
      host: z.string().optional(),
      resources: workerResources,
      slots: z.number(),
      running: z.number(),
      /** The runs it is running. */
      jobs: z.array(z.string()),
      started_at: z.string().optional(),
      last_seen: z.string().optional(),
      registered_at: z.string().optional(),
    }),
  ),
  /** `api_key` is shown this once: only its hash is stored. */
  registeredWorker: z.object({
    worker_id: z.string(),
    api_key: z.string(),
    pool: z.string(),
    slots: z.number(),
  }),
  drainedWorker: z.object({ worker_id: z.string(), state: z.enum(["draining", "removed"]) }),
  workerSettings: z.object({
    worker_id: z.string(),
    pool: z.string(),
    slots: z.number(),
    draining: z.boolean(),
    lease_seconds: z.number(),
    allow_dangerous_flags: z.boolean(),
    resume: z.boolean(),
  }),
  /**
   * Each run as stored when it was claimed, with a URL to GET each input file by and, for a CLI task, one
   * to GET the session its last unfinished run saved (absent: 404).
   */
  claimedWork: z.object({
    draining: z.boolean(),
    runs: z.array(
      z.object({
        task: taskSchema,
        run: runSchema,
        inputs: z.record(z.string(), z.string()),
        session: z.string().optional(),
      }),
    ),
  }),
  renewedLease: z.union([
    z.object({ lease_expires_at: z.string() }),
    z.object({ stop: z.enum(["canceled", "lost"]) }),
  ]),
  settledWork: z.object({ settled: z.boolean() }),
  releasedWork: z.object({ released: z.boolean() }),
  /** Presigned URLs, valid for 15 minutes. */
  uploadUrls: z.object({
    log: z.string().optional(),
    session: z.string().optional(),
    files: z.record(z.string(), z.string()),
  }),
};
