/**
 * The stored records as zod schemas, and the domain types inferred from them. A record's view (what a
 * client sees) is its schema's visible part: bookkeeping fields live in a separate shape.
 */
import * as z from "zod";
import { OVERLAPS, POOL_TOOLS, SCOPES, type Tags, tenantBudget } from "./fields.ts";
import { podSpecSchema } from "./pods.ts";
import { RUN_STATUSES, TASK_STATUSES, TERMINAL_STATUSES } from "./status.ts";

const time = z.string();
const tags = z.record(z.string(), z.string());
const tokens = z.object({
  input: z.number().optional(),
  output: z.number().optional(),
  total: z.number().optional(),
});

export const taskResultSchema = z.object({
  /** The run this result came from; its output files are under it. */
  run_id: z.string().optional(),
  exit_code: z.number().optional(),
  output: z.string().optional(),
  files: z.array(z.string()).optional(),
  tokens: tokens.optional(),
  cost_usd: z.number().optional(),
});
export type TaskResult = z.infer<typeof taskResultSchema>;

/** One attempt to POST a run's outcome to the task's callback URL. */
export const callbackDeliverySchema = z.object({
  time,
  /** The event delivered (core/events.ts) and its type, e.g. `run.succeeded`. */
  event_id: z.string(),
  type: z.string(),
  run_id: z.string().optional(),
  /** 1 for the first try of this event, then 2, … */
  attempt: z.number(),
  /** delivered; retry: tried again later; failed: given up (refused, gone, or out of attempts). */
  outcome: z.enum(["delivered", "retry", "failed"]),
  http_status: z.number().optional(),
  error: z.string().optional(),
});
export type CallbackDelivery = z.infer<typeof callbackDeliverySchema>;

/** Task.routing. */
export const poolRouting = z.object({ pools: z.string().optional(), account: z.string().optional() });
export type PoolRouting = z.infer<typeof poolRouting>;

/** A task as a client sees it. Times are ISO-8601 strings. */
export const taskViewSchema = z.object({
  /** A node's task: the workflow run that submitted it, and the node. */
  workflow: z.object({ run_id: z.string(), node: z.string() }).optional(),
  uuid: z.string(),
  tenant: z.string(),
  name: z.string().optional(),
  namespace: z.string(),
  project: z.string().optional(),
  tags,
  /** The CLI, or `container` for a pod job. */
  tool: z.enum(POOL_TOOLS),
  model: z.string().optional(),
  /** An LLM CLI job's prompt. */
  prompt: z.string().optional(),
  /** A pod job's container (tool `container`). */
  pod: podSpecSchema.optional(),
  input_files: z.array(z.string()),
  output_files: z.array(z.string()),
  pool: z.string(),
  priority: z.number(),
  status: z.enum(TASK_STATUSES),
  attempt: z.number(),
  max_attempts: z.number(),
  occurrence: z.number(),
  run_id: z.string().optional(),
  timeout: z.number(),
  idempotency_key: z.string().optional(),
  concurrency_key: z.string().optional(),
  /** While it is open, no other task of its tenant with its concurrency key is accepted (one per account). */
  exclusive: z.boolean().optional(),
  /** The template the task's job was rendered from, and its revision (kept: later revisions change nothing). */
  template: z.string().optional(),
  template_revision: z.number().optional(),
  callback: z.string().optional(),
  scheduled_at: time.optional(),
  /** Recurrence (see core/recurrence.ts): `schedule` or `interval`, limited by the rest. */
  schedule: z.string().optional(),
  interval: z.number().optional(),
  timezone: z.string().optional(),
  valid_time_range: z.tuple([z.number(), z.number()]).optional(),
  /** Submitted as `end_time`; renamed because a task's own `end_time` is when it ended. */
  schedule_end_time: time.optional(),
  times: z.number().optional(),
  overlap: z.enum(OVERLAPS).optional(),
  /** Occurrences fired so far, skipped ones included (`times` counts these). */
  fired_count: z.number().optional(),
  /** The slot of the last occurrence fired. */
  last_run_time: time.optional(),
  /** Set by pause: nothing new fires or is admitted. A running occurrence may finish. */
  paused_at: time.optional(),
  create_time: time,
  update_time: time,
  start_time: time.optional(),
  end_time: time.optional(),
  next_run_time: time.optional(),
  /** While running: the worker's lease; a worker that stops heartbeating loses the run when it passes. */
  lease_expires_at: time.optional(),
  result: taskResultSchema.optional(),
  error_message: z.string().optional(),
  /** The latest callback delivery attempts, oldest first (core/callbacks.ts keeps the last 20). */
  callback_deliveries: z.array(callbackDeliverySchema).optional(),
  /**
   * Shown by GET /v2/tasks/{uuid}, never stored: a queued task's place in its pool's admission order (1 is
   * next), when it is in its pool's queue and fewer than 1,000 are ahead, and its expected wait from now in
   * seconds (expect ± error; null until its pool has a few recent runs, or while it is paused).
   */
  position: z.number().optional(),
  waiting_time_expect: z.number().nullable().optional(),
  waiting_time_error: z.number().nullable().optional(),
  /**
   * Shown, never stored: why a queued task is not admitted now (`account_limited`: its pool's account waits
   * out a usage limit; `account_disabled`; `pool_paused` by an admin; `budget`: its tenant's or pool's daily
   * budget is spent), and until when (null: until resumed; for a budget, the next day's start).
   */
  waiting_reason: z.enum(["account_limited", "account_disabled", "pool_paused", "budget"]).optional(),
  waiting_until: z.string().nullable().optional(),
  /**
   * The pools it may run on when it names no one pool: those of its tool whose name matches `pools` (a
   * glob, `claude-*`; absent: any) and whose account is `account` (absent or `any`: any). While queued it
   * moves off a pool whose account is limited or disabled (core/tool-accounts.ts).
   */
  routing: poolRouting.optional(),
  /** Passed to the CLIs that take them (claude: --max-turns, --max-budget-usd); the budget reserves it. */
  max_turns: z.number().optional(),
  max_budget_usd: z.number().optional(),
  /** A retry takes up the CLI session the failed run left; absent: as its pool says. */
  resume: z.boolean().optional(),
});

/** The stored task: its view plus the scheduler's bookkeeping. */
export const taskSchema = taskViewSchema.extend({
  /** Optimistic-lock counter: every write expects the version it read. */
  version: z.number(),
  /** Runs created so far; numbers the next run id. */
  run_count: z.number().optional(),
  /** When the tick must look at the task next: a delayed start, a retry, an unconfirmed dispatch, a lease. */
  due_time: time.optional(),
  /** When its current run was dispatched (took its pool slot): the slot's age, for the wait estimates. */
  dispatch_time: time.optional(),
  /** The concurrency scopes (core/scopes.ts) whose slots its current run took: its release gives them back. */
  held_scopes: z.array(z.string()).optional(),
  /** When the task last became ready; orders the ready queue within a priority. */
  ready_time: time.optional(),
  /** Rate-limit answers retried so far without using an attempt. */
  rate_limit_retries: z.number().optional(),
  /** An occurrence fell due while the previous one was going (overlap `queue`): it runs when that ends. */
  occurrence_waiting: z.boolean().optional(),
  /** A reorder moved next_run_time away from this slot; the cadence resumes after it. */
  reorder_slot: time.optional(),
  /**
   * It counts among its concurrency key's open tasks until it ends (core/commit.ts); a task stored before
   * keys counted their tasks does not.
   */
  key_counted: z.boolean().optional(),
  /** Its pool's priority aging when it was submitted (readyKeyOf): its priority rises as it waits. */
  aging_seconds: z.number().optional(),
  /** The status a paused task goes back to on resume. */
  paused_from: z.enum(["scheduled", "queued"]).optional(),
  /**
   * Canceled while running: its pool and concurrency-key slots stay held until its worker has stopped the
   * job, or its lease (then its due_time) has run out, so that no task of its key runs beside it.
   */
  holds_slot: z.boolean().optional(),
  /**
   * Queued, but its concurrency key is busy: it waits out of its pool's ready queue, in its key's, until a
   * run of the key ends (or the tick's look at due_time finds the key free).
   */
  key_parked: z.boolean().optional(),
  /** The wait its submission predicted from create_time, in seconds: its first run's start tells how good. */
  predicted_wait: z.object({ expect: z.number(), error: z.number() }).optional(),
  /** How the pool was chosen for a task that named only a tool, among several (core/admission.ts). */
  routed_by: z.enum(["expected_wait", "load"]).optional(),
  /**
   * What its admission reserved of the daily budgets that apply to it (core/budgets.ts): the UTC day, the
   * budget items, and the dollars and tokens held until its run's settle counts what it really spent.
   */
  budget_hold: z
    .object({ day: z.string(), scopes: z.array(z.string()), usd: z.number(), tokens: z.number() })
    .optional(),
  /** Queued, but a daily budget of its is spent: it waits out of its pool's ready queue (core/budgets.ts). */
  budget_parked: z.boolean().optional(),
  /**
   * Its place among its tenant's tasks in its pool's queue, in rounds (core/fair-share.ts): at equal
   * priority, the ready queue serves the lowest round first, so tenants take turns.
   */
  fair_round: z.number().optional(),
});
export type Task = z.infer<typeof taskSchema>;

/**
 * A queued task's place in its pool's ready queue, as a key that sorts ascending (the ready index's sort
 * key): priority 9 first, then its fair round (tenants take turns, core/fair-share.ts), then the earliest
 * ready time. With priority aging (`aging_seconds`), by its
 * virtual ready time instead: its ready time less `aging_seconds` for each step of its priority. A task's
 * priority so rises a step for each `aging_seconds` it waits, and the order never needs rewriting: a task
 * of priority p goes before one of priority q > p that became ready more than (q − p) × aging_seconds
 * after it. The rise is not capped at 9 (a capped order would change as tasks wait, and every key with
 * it), so of two long-waiting tasks, the one of the higher priority may still go first.
 */
export function readyKeyOf(
  task: Pick<Task, "priority" | "ready_time" | "create_time" | "uuid" | "aging_seconds" | "fair_round">,
) {
  const ready = task.ready_time ?? task.create_time;
  if (task.aging_seconds === undefined) {
    // At equal priority, tenants take turns (their rounds), then the earliest ready time.
    const round =
      task.fair_round === undefined
        ? ""
        : `R${String(Math.round(task.fair_round * 1000)).padStart(15, "0")}#`;
    return `${9 - task.priority}#${round}${ready}#${task.uuid}`;
  }
  const virtual = Date.parse(ready) - task.priority * task.aging_seconds * 1000;
  return `V#${String(virtual).padStart(15, "0")}#${task.uuid}`;
}

/** Tasks holding one concurrency key run one at a time. */
export const CONCURRENCY_KEY_LIMIT = 1;

/** A task's concurrency key, scoped to its tenant: tenants never share a key. */
export const scopedConcurrencyKey = (task: Pick<Task, "tenant" | "concurrency_key">) =>
  task.concurrency_key === undefined ? undefined : `${task.tenant}#${task.concurrency_key}`;

/** A run as a client sees it. */
export const runViewSchema = z.object({
  run_id: z.string(),
  task_uuid: z.string(),
  tenant: z.string(),
  pool: z.string(),
  attempt: z.number(),
  occurrence: z.number(),
  status: z.enum(RUN_STATUSES),
  tags,
  worker: z.string().optional(),
  create_time: time,
  update_time: time,
  start_time: time.optional(),
  end_time: time.optional(),
  exit_code: z.number().optional(),
  latency_ms: z.number().optional(),
  tokens: tokens.optional(),
  cost_usd: z.number().optional(),
  output_tail: z.string().optional(),
  /** The CLI's session (claude's session_id, codex's thread id), when its stream named one. */
  session_id: z.string().optional(),
  /** The run whose saved CLI session this run took up instead of starting over. */
  resumed_from: z.string().optional(),
  error: z.string().optional(),
  /** A pod run's container (on AWS, its ECS task id): its log is that container's. */
  container_id: z.string().optional(),
});

export const runSchema = runViewSchema.extend({
  version: z.number(),
  /** The log was short enough to be all of output_tail: it is kept on the run, not in S3. */
  log_inline: z.boolean().optional(),
});
export type Run = z.infer<typeof runSchema>;

/** What a self-hosted worker says it has (cpu, memory, gpus, slots…): shown, and `slots` sizes it. */
export const workerResources = z.record(
  z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, "must match [a-z][a-z0-9_]{0,31}"),
  z.union([z.number(), z.string().max(200), z.boolean()]),
);

/**
 * A worker: a Fargate task's process, known from its reports, or a self-hosted worker registered over the
 * API (`registered_at`), known before it first reports and until it is removed.
 */
export const workerRecordSchema = z.object({
  worker_id: z.string(),
  pool: z.string(),
  slots: z.number(),
  /** Jobs it was running when it last reported, and their runs. */
  running: z.number(),
  jobs: z.array(z.string()).optional(),
  started_at: time.optional(),
  last_seen: time.optional(),
  /** Epoch seconds: it is live (serving) until then, unless it reports again. */
  live_until: z.number(),
  /** Epoch seconds: the record of an unregistered worker expires (DynamoDB TTL) once it stops reporting. */
  expires_at: z.number().optional(),
  /** Draining: it takes no new work, finishes what it runs, then exits. */
  draining: z.boolean().optional(),
  registered_at: time.optional(),
  host: z.string().optional(),
  resources: workerResources.optional(),
  /** A registered worker's key (its hash): removed with it. */
  key_hash: z.string().optional(),
});
export type WorkerRecord = z.infer<typeof workerRecordSchema>;

export const tenantSchema = z.object({
  id: z.string(),
  name: z.string(),
  rate_limit_per_minute: z.number(),
  /** Absent on tenants created before quotas existed: TENANT_DEFAULTS apply. */
  max_queued_tasks: z.number().optional(),
  max_submissions_per_minute: z.number().optional(),
  /** Its daily spend limit (core/budgets.ts); none: unlimited. */
  budget: tenantBudget.optional(),
  /** Its share of a pool against other tenants' at equal priority (core/fair-share.ts); absent: 1. */
  weight: z.number().optional(),
  create_time: time,
});
export type Tenant = z.infer<typeof tenantSchema>;

export const apiKeyRecordSchema = z.object({
  key_id: z.string(),
  tenant_id: z.string(),
  /** SHA-256 of the key, hex. The key itself is never stored. */
  key_hash: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  create_time: time,
  revoked_time: time.optional(),
});
export type ApiKeyRecord = z.infer<typeof apiKeyRecordSchema>;

/** A self-hosted worker's key: it pulls its pool's work and can do nothing else. */
export const workerKeyRecordSchema = z.object({
  key_id: z.string(),
  key_hash: z.string(),
  worker_id: z.string(),
  pool: z.string(),
  create_time: time,
});
export type WorkerKeyRecord = z.infer<typeof workerKeyRecordSchema>;

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

export const isRecurring = (task: Task) => task.schedule !== undefined || task.interval !== undefined;

/**
 * When the tick must look at a task next (the due index's key): its `due_time` (a delayed start, a retry,
 * an unconfirmed dispatch, a lease), or for a recurring task its next occurrence, unless that waits
 * (paused, or queued behind the running one). A paused or finished task is never due, unless it still
 * holds a slot: then the tick frees it when its lease has run out.
 */
export function dueAt(task: Task): string | undefined {
  if (task.holds_slot) return task.due_time;
  if (task.status === "paused" || TERMINAL_STATUSES.includes(task.status)) return undefined;
  const fires =
    isRecurring(task) && !task.paused_at && !task.occurrence_waiting ? task.next_run_time : undefined;
  if (task.due_time === undefined) return fires;
  return fires !== undefined && fires < task.due_time ? fires : task.due_time;
}
