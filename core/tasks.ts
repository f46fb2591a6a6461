import { createHash } from "node:crypto";
import { admit, admitAtSubmit, choosePool, poolConfig, refill, slotOf } from "./admission.ts";
import { actingTenant, canSee, type Principal, requireScope } from "./auth.ts";
import { holdReturned, refuseOverBudget } from "./budgets.ts";
import { commitChange } from "./commit.ts";
import type { PoolConfig } from "./config.ts";
import type { Deps } from "./deps.ts";
import type { RateLimitedError } from "./errors.ts";
import { ConflictError, runNotFound, taskNotFound, ValidationError } from "./errors.ts";
import { withFairRound } from "./fair-share.ts";
import { LIMITS, type PoolTool, type Tags } from "./fields.ts";
import { blobKeys, canonicalJson, runIdFor } from "./identifiers.ts";
import { queuedLimitOf, queuedQuotaReached } from "./limits.ts";
import { retryOnConflict } from "./optimistic.ts";
import { type PodSpec, podSpecOf, stopPod } from "./pods.ts";
import { type PolicySubject, policyRefusal } from "./policies.ts";
import { CommitConflict, type RecordWrite, type StateChange } from "./ports.ts";
import { type QueuePlace, queuePlace } from "./queues.ts";
import { isRecurring, type PoolRouting, type Run, type Task, withMergedTags } from "./records.ts";
import { firstFireTime, type Recurrence, recurrenceIssues } from "./recurrence.ts";
import { anchorOf, fireOccurrence } from "./recurring.ts";
import type { ListTasksQuery, SubmitTask } from "./requests.ts";
import { callbackUrlProblem } from "./ssrf.ts";
import { ACTIVE_STATUSES, assertTransition, type TaskStatus, TERMINAL_STATUSES } from "./status.ts";
import { renderForTask } from "./templates.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface SubmitOutcome {
  /** false for an idempotent replay. */
  created: boolean;
  task: Task;
  /** Where a created task that is still queued waits, and for how long it should (core/queues.ts). */
  place?: QueuePlace;
}

/**
 * Submits a task. It is stored `queued` (or `scheduled` when `scheduled_at` is in the future) and,
 * when queued, admitted at once if its pool has capacity. The submission quota was metered with the
 * request (core/limits.ts): `overQuota` is its refusal, raised unless the request replays a submission.
 */
export async function submitTask(
  deps: Deps,
  principal: Principal,
  input: SubmitTask,
  overQuota?: RateLimitedError,
  node?: WorkflowNodeTask,
): Promise<SubmitOutcome> {
  requireScope(principal, "tasks:write");
  const callbackProblem = input.callback && callbackUrlProblem(input.callback, deps.callbackPolicy);
  if (callbackProblem) throw new ValidationError("callback", callbackProblem);
  const tenant = actingTenant(principal);
  const job = await jobOf(deps, tenant, input, node?.inputs ?? {});
  const subject: PolicySubject = {
    namespace: input.namespace,
    tags: input.tags,
    timeout: job.timeout,
    priority: input.priority,
    prompt: job.prompt,
  };
  const routing = routingOf(job.pool, input.account);
  const { pool, routedBy } = routing
    ? await choosePool(deps, job.tool ?? (routing.pools ? undefined : "claude"), subject, routing)
    : { pool: poolConfig(deps, job.pool as string), routedBy: undefined };
  const refusal = policyRefusal(pool, subject);
  if (refusal) throw refusal;
  if (input.account && input.account !== "any" && input.account !== pool.account) {
    throw new ConflictError(
      `account: pool ${pool.name} uses account ${pool.account ?? "none"}, not ${input.account}`,
    );
  }
  if (job.tool && job.tool !== pool.tool) {
    throw new ConflictError(`tool: pool ${pool.name} runs ${pool.tool}, not ${job.tool}`);
  }
  if (pool.tool === "container" && !job.pod) {
    throw new ConflictError(`pool: ${pool.name} runs container jobs: submit a pod template`);
  }
  const now = deps.clock.now();
  const iso = now.toISOString();
  const recurrence = validRecurrence(input, now);
  const delayed = input.scheduled_at !== undefined && Date.parse(input.scheduled_at) > now.getTime();
  const uuid = deps.ids.uuid();
  const oneShot: Task = {
    uuid,
    version: 1,
    tenant,
    name: input.name,
    namespace: input.namespace,
    project: input.project,
    tags: input.tags,
    tool: pool.tool,
    model: job.model,
    prompt: job.prompt,
    pod: job.pod,
    input_files: job.input_files.map((f) => f.name),
    output_files: job.output_files,
    template: job.template,
    template_revision: job.template_revision,
    pool: pool.name,
    routed_by: routedBy,
    routing,
    max_turns: input.max_turns,
    max_budget_usd: input.max_budget_usd,
    resume: input.resume,
    workflow: node?.workflow,
    priority: input.priority,
    aging_seconds: pool.aging_seconds,
    status: delayed ? "scheduled" : "queued",
    attempt: 0,
    max_attempts: input.max_attempts,
    occurrence: 1,
    run_count: 0,
    timeout: job.timeout,
    idempotency_key: input.idempotency_key,
    concurrency_key: input.concurrency_key,
    exclusive: input.exclusive,
    key_counted: input.concurrency_key === undefined ? undefined : true,
    callback: input.callback,
    scheduled_at: input.scheduled_at,
    create_time: iso,
    update_time: iso,
    ready_time: delayed ? undefined : iso,
    next_run_time: delayed ? new Date(input.scheduled_at as string).toISOString() : undefined,
    due_time: delayed ? new Date(input.scheduled_at as string).toISOString() : undefined,
  };
  const task = recurrence ? recurringTask(oneShot, input, recurrence) : oneShot;
  const bodyHash = createHash("sha256").update(canonicalJson(input)).digest("hex");
  const change: StateChange & { tasks: [RecordWrite<Task>] } = { tasks: [{ next: task }] };
  if (input.idempotency_key) {
    const replay = await idempotentReplay(deps, principal, tenant, input.idempotency_key, bodyHash);
    if (replay) return replay;
    change.idempotency = { tenant, key: input.idempotency_key, uuid, body_hash: bodyHash };
  }
  // After the replay check: a replay creates nothing, so it is never refused by a quota or a budget.
  if (overQuota) throw overQuota;
  await refuseOverBudget(deps, tenant);
  const queuedLimit = queuedLimitOf(principal);
  // Files first: a task never points at files that are not there.
  await Promise.all(job.input_files.map((f) => deps.blobs.put(blobKeys.input(uuid, f.name), f.content)));
  let place: QueuePlace | undefined;
  try {
    if (task.status === "queued") {
      const dispatched = await admitAtSubmit(deps, pool, change);
      if (dispatched) return { created: true, task: dispatched };
      // It waits: its fair round first (its place depends on it), then the wait it is told to expect,
      // kept so that its start can tell how good that was (a read that fails leaves it without one).
      const entering = await withFairRound(deps, task);
      place = await queuePlace(deps, entering);
      change.tasks[0] = { next: withPrediction(entering, place) };
      const behind = await queuedBehindFullPool(deps, pool, change, queuedLimit);
      if (behind) return { created: true, task: behind, place };
    }
    change.tasks[0] = { next: (await commitChange(deps, change, {}, { limit: queuedLimit })) ?? task };
  } catch (err) {
    if (err instanceof CommitConflict && err.reason === "queued_quota")
      throw queuedQuotaReached(queuedLimit ?? 0);
    if (err instanceof CommitConflict && err.reason === "key_exclusive") {
      throw await keyHeld(deps, tenant, input.concurrency_key as string);
    }
    // A concurrent submit with the same key won the race.
    if (err instanceof CommitConflict && err.reason === "idempotency" && input.idempotency_key) {
      const replay = await idempotentReplay(deps, principal, tenant, input.idempotency_key, bodyHash);
      if (replay) return replay;
    }
    throw err;
  }
  // Stored: the answer is the task whatever follows, since a client that saw an error would submit it
  // again. What follows only hurries it; the tick fires and admits whatever it misses.
  const stored = await hurried(deps, change.tasks[0].next, pool);
  return { created: true, task: stored, place: stored.status === "queued" ? place : undefined };
}

/** A workflow node's submission: its run and node, and its inputs for a template to render. */
export interface WorkflowNodeTask {
  workflow: { run_id: string; node: string };
  inputs: Record<string, unknown>;
}

/** How many of a key's latest tasks a refusal looks through for the open one that holds the key. */
const HOLDER_SEARCH = 1_000;

/**
 * The refusal of a submission that the key's open tasks exclude: it names the task that holds the key (an
 * open exclusive one, else any open one) when one is among the key's latest.
 */
async function keyHeld(deps: Pick<Deps, "tasks">, tenant: string, key: string): Promise<ConflictError> {
  const open: Task[] = [];
  let cursor: string | undefined;
  for (let read = 0; read < HOLDER_SEARCH; read += LIMITS.pageSize) {
    const page = await deps.tasks.listTasks({ tenant, concurrencyKey: key, size: LIMITS.pageSize, cursor });
    open.push(...page.items.filter((task) => !TERMINAL_STATUSES.includes(task.status)));
    cursor = page.nextCursor;
    if (open.some((task) => task.exclusive) || !cursor) break;
  }
  const holder = open.find((task) => task.exclusive) ?? open[0];
  const by = holder ? ` by task ${holder.uuid}${holder.exclusive ? " (exclusive)" : ""}` : "";
  return new ConflictError(`concurrency_key: ${key} is held${by}`);
}

/** A task with the wait predicted for it, if there was enough history to predict one. */
const withPrediction = (task: Task, place: QueuePlace): Task =>
  place.waiting_time_expect == null || place.waiting_time_error == null
    ? task
    : { ...task, predicted_wait: { expect: place.waiting_time_expect, error: place.waiting_time_error } };

/** What a task runs: a CLI job (a prompt) or a pod, with the template it came from, if any. */
/**
 * Where a submission may run when it names no one pool: a pattern of pools, an account, or only a tool
 * (Task.routing). Undefined when it names its pool.
 */
function routingOf(pool: string | undefined, account: string | undefined): PoolRouting | undefined {
  if (pool !== undefined && !pool.includes("*")) return undefined;
  return { ...(pool !== undefined && { pools: pool }), ...(account !== undefined && { account }) };
}

interface Job {
  tool?: PoolTool;
  model?: string;
  prompt?: string;
  pod?: PodSpec;
  input_files: { name: string; content: string }[];
  output_files: string[];
  pool?: string;
  timeout: number;
  template?: string;
  template_revision?: number;
}

/**
 * What a submission runs: its own job fields, or (with `template`) the job its template's revision renders
 * to with its `value` and `extra`, recording the revision. Its `pool` still picks the pool. A pod is sized
 * by the submission's `quotas`, and its template's timeout, when it sets one, is the task's.
 */
async function jobOf(
  deps: Pick<Deps, "templates">,
  tenant: string,
  input: SubmitTask,
  inputs: Record<string, unknown>,
): Promise<Job> {
  if (input.template === undefined) return input;
  const rendered = await renderForTask(deps, tenant, input.template, {
    value: input.value ?? {},
    extra: input.extra ?? {},
    inputs,
    task: { name: input.name, namespace: input.namespace, project: input.project, tags: input.tags },
  });
  const source = { template: rendered.name, template_revision: rendered.revision };
  if (rendered.type !== "pod") {
    if (input.quotas)
      throw new ValidationError(
        "quotas",
        `size pod jobs; template ${rendered.name} is of type ${rendered.type}`,
      );
    return { ...input, ...rendered.spec, pool: input.pool ?? rendered.spec.pool, ...source };
  }
  return {
    tool: "container",
    pod: podSpecOf(rendered.spec, input.quotas),
    input_files: [],
    output_files: [],
    pool: input.pool,
    timeout: rendered.spec.timeout ?? input.timeout,
    ...source,
  };
}

/**
 * Stores a submitted task queued only while every slot of its pool is held: then the next slot given back
 * finds it waiting and admits it, so no admission pass need follow now. Returns it as stored; undefined,
 * with nothing written, when the pool has room (it is paused, or tasks wait that a pass has not reached yet,
 * or a slot just freed).
 */
async function queuedBehindFullPool(
  deps: Deps,
  pool: PoolConfig,
  change: StateChange,
  queuedLimit: number | undefined,
): Promise<Task | undefined> {
  try {
    return await commitChange(deps, change, {}, { limit: queuedLimit, whilePoolFull: pool.max_concurrency });
  } catch (err) {
    if (err instanceof CommitConflict && err.reason === "pool_has_room") return undefined;
    throw err;
  }
}

/** A task just stored, moved on at once if it can be: its first occurrence fired, or admitted. */
async function hurried(deps: Deps, task: Task, pool: PoolConfig): Promise<Task> {
  try {
    const iso = deps.clock.now().toISOString();
    if (isRecurring(task) && (task.next_run_time as string) <= iso && (await fireOccurrence(deps, task))) {
      return (await deps.tasks.getTask(task.uuid)) ?? task;
    }
    if (task.status !== "queued") return task;
    // Queued behind others, or the pool closed: admit what now fits (a slot may have freed meanwhile).
    return (await admit(deps, pool.name, [task])).find((t) => t.uuid === task.uuid) ?? task;
  } catch (err) {
    deps.log.warn("a stored task was not moved on at once; the tick will", {
      uuid: task.uuid,
      error: String(err),
    });
    return task;
  }
}

/** The submitted recurrence, checked; a bad one is a 400 naming the field. Undefined for one-shot tasks. */
function validRecurrence(input: SubmitTask, now: Date): Recurrence | undefined {
  const recurrence = {
    schedule: input.schedule,
    interval: input.interval,
    timezone: input.timezone ?? "UTC",
    valid_time_range: input.valid_time_range,
    end_time: input.end_time,
    times: input.times,
  };
  const recurring = input.schedule !== undefined || input.interval !== undefined;
  const loose = (["timezone", "overlap"] as const).find((field) => input[field] !== undefined);
  if (!recurring && loose) throw new ValidationError(loose, "needs schedule or interval");
  const [issue] = recurrenceIssues(recurrence, now);
  if (issue) throw new ValidationError(issue.field, issue.reason);
  return recurring ? recurrence : undefined;
}

/** A recurring task waits, `scheduled`, for its first occurrence; the tick fires each one. */
function recurringTask(task: Task, input: SubmitTask, recurrence: Recurrence): Task {
  const first = firstFireTime(recurrence, anchorOf(task));
  if (!first) throw new ValidationError("end_time", "ends before the first occurrence");
  return {
    ...task,
    status: "scheduled",
    schedule: input.schedule,
    interval: input.interval,
    timezone: recurrence.timezone,
    valid_time_range: input.valid_time_range,
    schedule_end_time: input.end_time,
    times: input.times,
    overlap: input.overlap ?? "skip",
    occurrence: 0,
    fired_count: 0,
    ready_time: undefined,
    due_time: undefined,
    next_run_time: first.toISOString(),
  };
}

async function idempotentReplay(
  deps: Deps,
  principal: Principal,
  tenant: string,
  key: string,
  bodyHash: string,
): Promise<SubmitOutcome | undefined> {
  const record = await deps.idempotency.getIdempotency(tenant, key);
  if (!record) return undefined;
  if (record.body_hash !== bodyHash) {
    throw new ConflictError("idempotency_key: already used with a different body");
  }
  return { created: false, task: await visibleTask(deps, principal, record.uuid) };
}

/**
 * A task the principal may see; anything else is a 404. No scope check: for use cases that check their
 * own (a `tasks:write` key cancels or tags its tenant's tasks without `tasks:read`).
 */
export async function visibleTask(
  deps: Pick<Deps, "tasks">,
  principal: Principal,
  uuid: string,
): Promise<Task> {
  // Only a uuid can name a task: anything else is not looked up (no key too long or odd for the store).
  const task = UUID.test(uuid) ? await deps.tasks.getTask(uuid) : undefined;
  if (!task || !canSee(principal, task.tenant)) throw taskNotFound(uuid);
  return task;
}

/** Reads a task (scope `tasks:read`) the principal may see; anything else is a 404. */
export async function getTask(deps: Pick<Deps, "tasks">, principal: Principal, uuid: string): Promise<Task> {
  requireScope(principal, "tasks:read");
  return visibleTask(deps, principal, uuid);
}

/** The tasks a principal may list, with filters; with `concurrencyKey`, only that key's (an account's). */
export async function listTasks(
  deps: Pick<Deps, "tasks">,
  principal: Principal,
  query: ListTasksQuery,
  concurrencyKey?: string,
) {
  requireScope(principal, "tasks:read");
  const page = await deps.tasks.listTasks({
    tenant: actingTenant(principal, query.tenant),
    status: query.status as TaskStatus | undefined,
    pool: query.pool,
    namespace: query.namespace,
    tag: query.tag,
    concurrencyKey,
    size: query.size,
    cursor: query.cursor,
  });
  return { total: page.total, tasks: page.items, next_cursor: page.nextCursor ?? null };
}

/**
 * Cancels a task. Scheduled, queued, paused and dispatched work ends at once, and a dispatched task gives
 * its slot back in the same transaction (no worker has claimed it, and none can now). A running task ends
 * `canceled` at once too, but keeps its slots until its process is gone: its worker sees the cancel on its
 * next heartbeat, kills the job and frees them (releaseHeldSlot); if the worker is gone, the tick frees them
 * when the lease runs out. A running pod is stopped, and its end frees them.
 */
export async function cancelTask(deps: Deps, principal: Principal, uuid: string): Promise<Task> {
  requireScope(principal, "tasks:write");
  const canceled = await retryOnConflict(async () => {
    const task = await visibleTask(deps, principal, uuid);
    assertTransition(task.status, "canceled");
    const iso = deps.clock.now().toISOString();
    const next: Task = {
      ...task,
      version: task.version + 1,
      status: "canceled",
      update_time: iso,
      end_time: iso,
      due_time: undefined,
      next_run_time: undefined,
    };
    const change: StateChange = { tasks: [{ next, expectVersion: task.version }] };
    const heldSlot = ACTIVE_STATUSES.includes(task.status);
    let run: Run | undefined;
    if (heldSlot) {
      run = await currentRun(deps, task);
      change.runs = [
        {
          next: { ...run, version: run.version + 1, status: "canceled", end_time: iso, update_time: iso },
          expectVersion: run.version,
        },
      ];
      if (task.status === "running") {
        next.holds_slot = true;
        next.due_time = task.lease_expires_at;
      } else {
        // Dispatched, never claimed: no run will spend what its admission reserved.
        change.release = slotOf(task);
        change.spend = holdReturned(task);
        next.budget_hold = undefined;
      }
    }
    await commitChange(deps, change, { task, run });
    return { task: next, released: change.release };
  });
  if (canceled.released) await refill(deps, canceled.released);
  // A running pod has no worker to see the cancel: it is stopped, and its end frees the slots it kept.
  // Should the stop fail, the tick stops it when its deadline passes.
  if (canceled.task.holds_slot) {
    await stopPod(deps, canceled.task, "canceled").catch((err: unknown) =>
      deps.log.warn("could not stop a canceled pod; the tick stops it", {
        uuid,
        error: String(err),
      }),
    );
  }
  return canceled.task;
}

/**
 * Frees the slots a canceled task kept for its run (see cancelTask), once that run's process is gone or
 * its lease has run out; `runId` names the run. False when there is nothing to free (already freed).
 */
export async function releaseHeldSlot(deps: Deps, uuid: string, runId: string): Promise<boolean> {
  const released = await retryOnConflict(async () => {
    const task = await deps.tasks.getTask(uuid);
    if (!task?.holds_slot || task.run_id !== runId) return undefined;
    const next: Task = { ...task, version: task.version + 1, holds_slot: undefined, due_time: undefined };
    await commitChange(
      deps,
      { tasks: [{ next, expectVersion: task.version }], release: slotOf(task) },
      { task },
    );
    return next;
  });
  if (!released) return false;
  await refill(deps, slotOf(released));
  return true;
}

async function currentRun(deps: Pick<Deps, "tasks">, task: Task): Promise<Run> {
  const runId = task.run_id ?? runIdFor(task.uuid, task.run_count ?? 0);
  const run = await deps.tasks.getRun(task.uuid, runId);
  if (!run) throw runNotFound(runId);
  return run;
}

/** A task's events, oldest first, paged: a client catches up from its last cursor. */
export async function listTaskEvents(
  deps: Pick<Deps, "events" | "tasks">,
  principal: Principal,
  uuid: string,
  page: { size: number; cursor?: string },
) {
  const task = await getTask(deps, principal, uuid);
  const events = await deps.events.listEvents(task.uuid, page.size, page.cursor);
  return {
    total: events.total,
    events: events.items.map(({ callback: _callback, ...event }) => event),
    next_cursor: events.nextCursor ?? null,
  };
}

/** Merges tags into a task (new values win). */
export async function mergeTaskTags(
  deps: Deps,
  principal: Principal,
  uuid: string,
  tags: Tags,
): Promise<Task> {
  requireScope(principal, "tasks:write");
  return retryOnConflict(async () => {
    const task = await visibleTask(deps, principal, uuid);
    const next = withMergedTags(task, tags, deps.clock.now());
    await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task });
    return next;
  });
}
