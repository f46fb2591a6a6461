import { poolConfig, type QueueMessageBody, refill, routablePools, slotOf } from "./admission.ts";
import { spendOf } from "./budgets.ts";
import { commitChange } from "./commit.ts";
import { isCliPool, type PoolConfig } from "./config.ts";
import type { Deps } from "./deps.ts";
import { poolSampleOf, waitOutcomeOf } from "./estimate.ts";
import { CommitConflict } from "./ports.ts";
import type { RateLimitHit, UsageReport } from "./rate-limits.ts";
import { isRecurring, type Run, type Task, type TaskResult } from "./records.ts";
import { assertTransition, type RunStatus } from "./status.ts";
import { limitAccount, limitOf, noteUsage } from "./tool-accounts.ts";

/** Rate-limit answers retried without using an attempt, per task; past it they count as failures. */
export const RATE_LIMIT_RETRY_CAP = 5;
/** Kept on the task and run (the full log is in S3): UTF-8 bytes, so that an item stays far below 400 KB. */
const RESULT_OUTPUT_BYTES = 64_000;
export const TAIL_BYTES = 4_000;
/** An error text on a task, a run or an event (a CLI's error answer can be a whole transcript). */
const ERROR_BYTES = 2_000;

/**
 * Where a job's log is kept: whole on the run record (its output_tail) when it is short and its worker
 * settles the run as finished, which saves an S3 PUT per run; otherwise in S3 with the output files.
 */
export const logStaysOnRun = (log: string, stoppedByTheWorker: boolean) =>
  !stoppedByTheWorker && Buffer.byteLength(log) <= TAIL_BYTES;

/**
 * A log meant for the run record goes to S3 after all when the record did not take it: the settle was
 * dropped or failed (the run ended elsewhere), or the run was handed back rather than finished.
 */
export const logMissedItsRun = (recorded: boolean, ending: RunEnding) =>
  !recorded || ending.kind !== "finished";

/** Cuts text to at most `max` UTF-8 bytes, keeping its start or (for a tail) its end, on a character boundary. */
export function truncate(text: string, max: number, keep: "start" | "end" = "start"): string {
  const bytes = Buffer.from(text);
  if (bytes.length <= max) return text;
  const kept = keep === "start" ? bytes.subarray(0, max) : bytes.subarray(bytes.length - max);
  // A cut through a multi-byte character decodes to U+FFFD at the cut: drop it.
  const decoded = kept.toString("utf8").replace(keep === "start" ? /\uFFFD$/ : /^\uFFFD/, "");
  return keep === "start" ? `${decoded}…[truncated]` : `[truncated]…${decoded}`;
}

/** The error text of an ending that did not succeed, bounded. */
const errorOf = (ending: RunEnding) =>
  truncate(
    ending.kind === "finished"
      ? (ending.outcome.error ?? `exit code ${ending.outcome.exitCode}`)
      : ending.reason,
    ERROR_BYTES,
  );

/**
 * The fencing rule: a worker that could not renew its lease kills its job this long before the lease runs
 * out (the kill's grace, and a quarter of the lease for the clocks and the kill itself), so that a job is
 * never still running when the tick hands its run to another worker.
 */
export function fenceDelayMs(held: HeldRun, now: Date, leaseSeconds: number, killGraceMs: number): number {
  const expires = Date.parse(held.task.lease_expires_at ?? now.toISOString());
  return expires - now.getTime() - killGraceMs - leaseSeconds * 250;
}

/** How long past its lease a settle is still tried: by then the tick has ended the run as lost. */
const SETTLE_PAST_LEASE_MS = 60_000;

/** A settle the store keeps refusing is given up a minute past the run's lease, for the tick to end it. */
export const settleGivenUp = (held: HeldRun, now: Date) =>
  now.getTime() > Date.parse(held.task.lease_expires_at ?? "") + SETTLE_PAST_LEASE_MS;

/** After its n-th failure in a row, a heartbeat or settle is tried again: 0.5 s, doubling up to 10 s. */
export const retryAfterFailureMs = (failures: number) =>
  Math.min(10_000, 500 * 2 ** Math.max(0, failures - 1));

/** Lost races a settle or heartbeat re-reads through before giving up until the next try. */
const RACE_RETRIES = 5;

/** A run a worker holds: the records as it last wrote them. */
export interface HeldRun {
  task: Task;
  run: Run;
}

/** How a CLI run ended, as the worker saw it. */
export interface RunOutcome {
  exitCode: number | null;
  /** Set when the run did not succeed: timeout, exit code, the CLI's own error. */
  error?: string;
  output?: string;
  tokens?: TaskResult["tokens"];
  cost_usd?: number;
  /** Output files uploaded for this run. */
  files: string[];
  /** The end of the log, kept on the run. */
  tail: string;
  /** `tail` is the whole log (see logStaysOnRun); it was not uploaded. */
  logInline?: boolean;
  durationMs: number;
  /** The CLI answered with a rate or usage limit. */
  rateLimit?: RateLimitHit;
  /** The CLI's latest report of its account's usage window. */
  usage?: UsageReport;
  /** The CLI's session: what a later attempt may resume. */
  sessionId?: string;
  /** The run whose saved session this run took up. */
  resumedFrom?: string;
  /** The job cannot run on this worker (its CLI is not installed): the task fails without a retry. */
  permanent?: boolean;
}

/** How a held run ends: the CLI finished, the lease expired, or a stopping worker handed it back. */
export type RunEnding =
  | { kind: "finished"; outcome: RunOutcome }
  | { kind: "lost"; reason: string }
  | { kind: "released"; reason: string };

/** Exponential backoff with equal jitter: min(max, base·2^(attempt−1)), of which the upper half is random. */
export function retryDelaySeconds(retry: PoolConfig["retry"], attempt: number, random: () => number): number {
  const ceiling = Math.min(retry.max_seconds, retry.base_seconds * 2 ** Math.max(0, attempt - 1));
  return ceiling / 2 + (random() * ceiling) / 2;
}

const plusSeconds = (now: Date, seconds: number) => new Date(now.getTime() + seconds * 1000).toISOString();

export type ClaimOutcome = { claimed: true; held: HeldRun } | { claimed: false; reason: string };

/** The records a claim starts from: the dispatch's snapshot if it has one of this run, else read. */
async function claimBasis(
  deps: Pick<Deps, "tasks">,
  message: Pick<QueueMessageBody, "task_uuid" | "run_id" | "snapshot">,
) {
  const { snapshot } = message;
  if (snapshot?.task.uuid === message.task_uuid && snapshot.run.run_id === message.run_id) {
    return [snapshot.task, snapshot.run] as const;
  }
  return Promise.all([
    deps.tasks.getTask(message.task_uuid),
    deps.tasks.getRun(message.task_uuid, message.run_id),
  ]);
}

/**
 * A worker takes a dispatched run: task and run move to `running` together, and the task gets a lease.
 * A message for a run that is no longer dispatched (a duplicate, or canceled meanwhile) is stale: the
 * worker deletes it and runs nothing. The claim writes on the versions of the message's snapshot; when
 * they are no longer current, it reads the records and decides again.
 */
export async function claimRun(
  deps: Pick<Deps, "tasks" | "clock" | "config" | "counters" | "tenants">,
  message: Pick<QueueMessageBody, "task_uuid" | "run_id" | "snapshot">,
  workerId: string,
  racesLeft = RACE_RETRIES,
): Promise<ClaimOutcome> {
  const [task, run] = await claimBasis(deps, message);
  if (!task || !run) return { claimed: false, reason: "unknown task or run" };
  if (task.run_id !== run.run_id || task.status !== "dispatched" || run.status !== "dispatched") {
    return { claimed: false, reason: `stale: task is ${task.status}, run is ${run.status}` };
  }
  assertTransition(task.status, "running");
  const now = deps.clock.now();
  const iso = now.toISOString();
  const lease = plusSeconds(now, poolConfig(deps, task.pool).lease_seconds);
  const held: HeldRun = {
    task: {
      ...task,
      version: task.version + 1,
      status: "running",
      start_time: task.start_time ?? iso,
      update_time: iso,
      lease_expires_at: lease,
      due_time: lease,
    },
    run: {
      ...run,
      version: run.version + 1,
      status: "running",
      worker: workerId,
      start_time: iso,
      update_time: iso,
    },
  };
  try {
    await commitChange(
      deps,
      {
        tasks: [{ next: held.task, expectVersion: task.version }],
        runs: [{ next: held.run, expectVersion: run.version }],
      },
      { task, run },
    );
  } catch (err) {
    // The snapshot is old, or another write (tags, a callback record) bumped the version: read and look
    // again; the status check above then tells a real change (canceled, claimed elsewhere) from a harmless one.
    if (err instanceof CommitConflict) {
      const ids = { task_uuid: message.task_uuid, run_id: message.run_id };
      if (racesLeft > 0) return claimRun(deps, ids, workerId, racesLeft - 1);
      return { claimed: false, reason: "stale: changed while claiming" };
    }
    throw err;
  }
  return { claimed: true, held };
}

/** Whether the held run is still this worker's: the task is running it. */
const stillHeld = (task: Task | undefined, held: HeldRun): task is Task =>
  task?.status === "running" && task.run_id === held.run.run_id;

export type HeartbeatResult = { held: HeldRun } | { stop: "canceled" | "lost" };

/**
 * Extends the lease (one conditional write of the task). If the task changed meanwhile, it is re-read:
 * canceled means kill the job, and no longer running this run means the lease was lost.
 */
export async function heartbeat(
  deps: Pick<Deps, "tasks" | "clock" | "config" | "counters" | "tenants">,
  held: HeldRun,
): Promise<HeartbeatResult> {
  let task = held.task;
  for (let race = 0; race < RACE_RETRIES; race++) {
    const lease = plusSeconds(deps.clock.now(), poolConfig(deps, task.pool).lease_seconds);
    const next: Task = { ...task, version: task.version + 1, lease_expires_at: lease, due_time: lease };
    try {
      await commitChange(deps, { tasks: [{ next, expectVersion: task.version }] }, { task });
      return { held: { ...held, task: next } };
    } catch (err) {
      if (!(err instanceof CommitConflict)) throw err;
      const fresh = await deps.tasks.getTask(task.uuid);
      if (fresh?.status === "canceled") return { stop: "canceled" };
      if (!stillHeld(fresh, held)) return { stop: "lost" };
      task = fresh;
    }
  }
  return { held: { ...held, task } };
}

/** What a run's ending is judged in: its pool, the time, the retry jitter, and whether the task may go elsewhere. */
interface EndingContext {
  pool: PoolConfig;
  now: Date;
  random: () => number;
  /** It may run on a pool of another account (runsElsewhere). */
  elsewhere: boolean;
}

/**
 * The task after its run ended. A recurring task's finished occurrence leads to the next one (or to
 * `completed`), and a paused task stops where it would have gone on.
 */
function taskAfter(task: Task, ending: RunEnding, context: EndingContext): Task {
  let next = runEndedTask(task, ending, context);
  if (isRecurring(task) && (next.status === "succeeded" || next.status === "failed")) {
    const ended = !next.occurrence_waiting && next.next_run_time === undefined;
    next = ended
      ? { ...next, status: "completed" }
      : { ...next, status: "scheduled", end_time: undefined, occurrence_waiting: undefined };
  }
  if (task.paused_at && (next.status === "scheduled" || next.status === "queued")) {
    next = { ...next, status: "paused", paused_from: next.status };
  }
  return next;
}

/** The outcome of one run: succeeded, retried later, back in the queue, or failed. */
function runEndedTask(task: Task, ending: RunEnding, context: EndingContext): Task {
  const { pool, now, random, elsewhere } = context;
  const iso = now.toISOString();
  const base: Task = {
    ...task,
    version: task.version + 1,
    update_time: iso,
    lease_expires_at: undefined,
    due_time: undefined,
  };
  if (ending.kind === "released") {
    // Not the job's fault: back to the queue, and the attempt is given back.
    return { ...base, status: "queued", attempt: task.attempt - 1, ready_time: iso };
  }
  const outcome = ending.kind === "finished" ? ending.outcome : undefined;
  const result: TaskResult | undefined = outcome && {
    run_id: task.run_id,
    exit_code: outcome.exitCode ?? undefined,
    output: outcome.output === undefined ? undefined : truncate(outcome.output, RESULT_OUTPUT_BYTES),
    files: outcome.files,
    tokens: outcome.tokens,
    cost_usd: outcome.cost_usd,
  };
  if (outcome && outcome.exitCode === 0 && outcome.error === undefined) {
    return { ...base, status: "succeeded", end_time: iso, result, error_message: undefined };
  }
  const error = errorOf(ending);
  const rateLimitRetries = task.rate_limit_retries ?? 0;
  if (outcome?.rateLimit && rateLimitRetries < RATE_LIMIT_RETRY_CAP) {
    const limit = limitOf(pool, outcome, now);
    if (limit && elsewhere) {
      // It may run on another account: queued again at once, in its old place, and moved (afterSettle).
      return {
        ...base,
        status: "queued",
        attempt: task.attempt - 1,
        rate_limit_retries: rateLimitRetries + 1,
        result,
        error_message: error,
      };
    }
    const due = limit
      ? limit.until.toISOString()
      : plusSeconds(now, retryDelaySeconds(pool.retry, rateLimitRetries + 1, random));
    return {
      ...base,
      status: "scheduled",
      attempt: task.attempt - 1,
      rate_limit_retries: rateLimitRetries + 1,
      due_time: due,
      next_run_time: isRecurring(task) ? task.next_run_time : due,
      result,
      error_message: error,
    };
  }
  if (task.attempt < task.max_attempts && !outcome?.permanent) {
    const due = plusSeconds(now, retryDelaySeconds(pool.retry, task.attempt, random));
    // A recurring task's next_run_time stays its next occurrence; a one-shot task shows the retry.
    const nextRun = isRecurring(task) ? task.next_run_time : due;
    return {
      ...base,
      status: "scheduled",
      due_time: due,
      next_run_time: nextRun,
      result,
      error_message: error,
    };
  }
  return { ...base, status: "failed", end_time: iso, result, error_message: error };
}

function runAfter(run: Run, ending: RunEnding, now: Date): Run {
  const iso = now.toISOString();
  const base = { ...run, version: run.version + 1, end_time: iso, update_time: iso };
  if (ending.kind !== "finished") return { ...base, status: "lost", error: errorOf(ending) };
  const { outcome } = ending;
  const succeeded = outcome.exitCode === 0 && outcome.error === undefined;
  const status: RunStatus = succeeded ? "succeeded" : "failed";
  return {
    ...base,
    status,
    exit_code: outcome.exitCode ?? undefined,
    latency_ms: outcome.durationMs,
    tokens: outcome.tokens,
    cost_usd: outcome.cost_usd,
    output_tail: truncate(outcome.tail, TAIL_BYTES, "end"),
    session_id: outcome.sessionId,
    resumed_from: outcome.resumedFrom,
    log_inline: outcome.logInline,
    error: succeeded ? undefined : errorOf(ending),
  };
}

/**
 * Ends a held run in one transaction: the run, the task (succeeded, retried, requeued or failed) and
 * the pool slot. If the task moved meanwhile (canceled, or its lease reclaimed) the ending is dropped:
 * whoever moved it already ended the run and gave the slot back. Then the pool admits its next task,
 * unless the slot was given back on the condition that no task waited for it (see `backlogged`).
 * Returns the task as stored, or undefined when the ending was dropped.
 */
export async function settleRun(deps: Deps, held: HeldRun, ending: RunEnding): Promise<Task | undefined> {
  const pool = poolConfig(deps, held.task.pool);
  let task: Task | undefined = held.task;
  let run = held.run;
  for (let race = 0; stillHeld(task, held); race++) {
    // Still held after this many races: not dropped, only not yet recorded; the caller tries again.
    if (race === RACE_RETRIES) throw new Error(`run ${held.run.run_id}: lost ${race} races while settling`);
    const now = deps.clock.now();
    // A lease found expired on a stale read may have been renewed since.
    if (ending.kind === "lost" && (task.lease_expires_at ?? "") > now.toISOString()) return undefined;
    const elsewhere = runsElsewhere(deps, task, pool);
    const nextTask = taskAfter(task, ending, { pool, now, random: deps.random, elsewhere });
    assertTransition(task.status, nextTask.status);
    // A task requeued here waits for a slot itself, and tasks of other pools may wait for its scopes':
    // admission must follow.
    const whenNoneWaiting =
      nextTask.status !== "queued" && !backlogged(deps).has(pool.name) && !task.held_scopes?.length;
    let stored: Task | undefined;
    try {
      stored = await commitChange(
        deps,
        {
          tasks: [{ next: nextTask, expectVersion: task.version }],
          runs: [{ next: runAfter(run, ending, now), expectVersion: run.version }],
          release: { ...slotOf(task), whenNoneWaiting },
          // A run that ended by itself tells how long a slot is held: the wait estimates use it.
          ...(ending.kind === "finished" && { sample: poolSampleOf(task, run, now) }),
          waitOutcome: waitOutcomeOf(task, run),
          spend: spendOf(task, ending.kind === "finished" ? ending.outcome : undefined, now),
        },
        { task, run },
      );
    } catch (err) {
      if (!(err instanceof CommitConflict)) throw err;
      if (err.reason === "tasks_waiting") {
        backlogged(deps).add(pool.name);
        continue;
      }
      [task, run] = await Promise.all([
        deps.tasks.getTask(task.uuid),
        deps.tasks.getRun(task.uuid, run.run_id).then((r) => r ?? run),
      ]);
      continue;
    }
    // The ending is recorded: what follows only speeds things up (the tick pumps every pool and looks at
    // the accounts anyway), so its failure must not look like a settle that did not happen.
    await afterSettle(deps, pool, task, stored ?? nextTask, ending, now, !whenNoneWaiting).catch(
      (err: unknown) =>
        deps.log.warn("after a settle: an account's limit or an admission failed", {
          pool: pool.name,
          error: String(err),
        }),
    );
    return stored ?? nextTask;
  }
  return undefined;
}

/** Whether a task may run on a pool of another account than `pool`'s (its routing allows one). */
function runsElsewhere(deps: Pick<Deps, "config">, task: Task, pool: PoolConfig): boolean {
  if (!task.routing) return false;
  return routablePools(deps, task.tool, task.routing).some((p) => p.account !== pool.account);
}

/**
 * Per store, the pools whose last settle in this process was followed by admissions: tasks wait there.
 * While a pool has none waiting, a settle gives its slot back on that condition and skips the admission
 * pass (a read of the ready queue) that would find nothing. Under a backlog it gives the slot back plainly
 * and admits, with no refused attempt first. Only a hint: a wrong guess costs one refused write, or one
 * empty read.
 */
const backloggedPools = new WeakMap<object, Set<string>>();
function backlogged(deps: Pick<Deps, "tasks">): Set<string> {
  const pools = backloggedPools.get(deps.tasks) ?? new Set<string>();
  backloggedPools.set(deps.tasks, pools);
  return pools;
}

async function afterSettle(
  deps: Deps,
  pool: PoolConfig,
  task: Task,
  nextTask: Task,
  ending: RunEnding,
  now: Date,
  mayHaveWaiting: boolean,
) {
  const outcome = ending.kind === "finished" ? ending.outcome : undefined;
  const limit = outcome && limitOf(pool, outcome, now);
  if (limit && isCliPool(pool)) {
    await limitAccount(deps, pool, limit, nextTask.status === "queued" ? [nextTask] : []);
  } else if (outcome?.usage && isCliPool(pool)) await noteUsage(deps, pool, outcome.usage);
  if (!mayHaveWaiting) return;
  if ((await refill(deps, slotOf(task))) > 0) backlogged(deps).add(pool.name);
  else backlogged(deps).delete(pool.name);
}

/**
 * The tick found a running task whose lease passed: its worker died or hung. The run is marked lost and
 * the task retried or failed. A worker that heartbeats meanwhile wins the race, and nothing changes.
 */
export async function reclaimLease(deps: Deps, task: Task): Promise<boolean> {
  const run = task.run_id ? await deps.tasks.getRun(task.uuid, task.run_id) : undefined;
  if (!run || task.status !== "running") return false;
  const reason = `lease expired at ${task.lease_expires_at}: the worker stopped heartbeating`;
  return (await settleRun(deps, { task, run }, { kind: "lost", reason })) !== undefined;
}
