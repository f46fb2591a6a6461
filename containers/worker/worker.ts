import { setTimeout as sleep } from "node:timers/promises";
import { decodeDispatch, poolConfig } from "../../core/admission.ts";
import type { Deps } from "../../core/deps.ts";
import {
  claimRun,
  type HeldRun,
  logMissedItsRun,
  logStaysOnRun,
  type RunEnding,
  type RunOutcome,
  retryAfterFailureMs,
  settleGivenUp,
  settleRun,
} from "../../core/execution.ts";
import { blobKeys } from "../../core/identifiers.ts";
import type { Task } from "../../core/records.ts";
import { releaseHeldSlot } from "../../core/tasks.ts";
import { reportWorker, WORKER_REPORT_SECONDS } from "../../core/workers.ts";
import { type JobOutcome, runJob } from "./job-runner.ts";
import { keepLease, type Lease, type LeaseEnd } from "./lease.ts";
import { scaleInProtection } from "./scale-in-protection.ts";

export interface WorkerOptions {
  pool: string;
  workerId: string;
  /** Jobs this process runs at once. */
  slots: number;
  /** Long-poll wait; short locally so that shutdown is quick. */
  waitSeconds: number;
  /** The pool account's credentials, handed to the CLI and to nothing else. */
  credentials: Record<string, string>;
  /** Aborted on SIGTERM: take no more work, let running jobs finish within `drainSeconds`. */
  stopping: AbortSignal;
  drainSeconds: number;
  /** The ECS agent's endpoint (ECS_AGENT_URI on Fargate): the task is protected from scale-in while busy. */
  ecsAgentUri?: string;
}

/** Protection a job asks for past its timeout: uploads, the settle, a slow kill. */
const PROTECTION_MARGIN_SECONDS = 120;

/** SIGTERM, then SIGKILL this long after, for timeouts, cancels and releases. */
const KILL_GRACE_MS = 2000;

/** Why a job's process was stopped before it ended by itself: its lease ended, or the worker is stopping. */
type StopReason = LeaseEnd | "released";

/**
 * The pull loop of one pool. It long-polls the FIFO queue for as many messages as it has free slots,
 * claims each run (a stale or duplicate message is dropped), and deletes the message: from the claim
 * on, the task's lease in DynamoDB is what keeps the run, and the tick reclaims it if this process dies.
 */
export async function runWorker(deps: Deps, options: WorkerOptions): Promise<void> {
  const { pool, slots, waitSeconds, stopping } = options;
  const jobs = new Map<string, { done: Promise<void>; stop: (reason: StopReason) => void }>();
  const report = (stopped = false) =>
    reportWorker(deps, {
      workerId: options.workerId,
      pool,
      slots,
      running: jobs.size,
      startedAt,
      stopped,
    }).catch((err: unknown) => deps.log.warn("worker report failed", { error: String(err) }));
  const startedAt = deps.clock.now().toISOString();
  const protection = scaleInProtection(options.ecsAgentUri, deps);
  await report();
  const reporting = setInterval(report, WORKER_REPORT_SECONDS * 1000);
  // A SIGTERM while every slot is busy must still lead to the drain, not wait for a job to end.
  const stopped = new Promise<void>((resolve) => {
    if (stopping.aborted) resolve();
    stopping.addEventListener("abort", () => resolve(), { once: true });
  });
  /** Claims a message's run and starts its job; the message is then done with (deleted by the caller). */
  const take = async (message: { body: string; receiptHandle: string }) => {
    const body = decodeDispatch(message.body);
    if (!body) {
      // Nothing Switchyard sent: no run to claim, and it would only come back.
      deps.log.warn("dropped a malformed message", { pool, body: message.body.slice(0, 200) });
      return;
    }
    const claim = await claimRun(deps, body, options.workerId);
    if (claim.claimed) {
      const runsFor = (claim.held.task.timeout + PROTECTION_MARGIN_SECONDS) * 1000;
      void protection.protectUntil(new Date(deps.clock.now().getTime() + runsFor));
      const job = startJob(deps, claim.held, options);
      jobs.set(body.run_id, job);
      void job.done.finally(() => {
        jobs.delete(body.run_id);
        if (jobs.size === 0) void protection.release();
      });
    } else deps.log.info("dropped message", { run_id: body.run_id, reason: claim.reason });
  };
  while (!stopping.aborted) {
    if (jobs.size >= slots) {
      await Promise.race([stopped, ...[...jobs.values()].map((j) => j.done)]);
      continue;
    }
    let messages: Awaited<ReturnType<Deps["queue"]["receive"]>>;
    try {
      messages = await deps.queue.receive(pool, slots - jobs.size, waitSeconds);
    } catch (err) {
      if (stopping.aborted) break;
      deps.log.warn("receive failed; retrying", { pool, error: String(err) });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    const taken: string[] = [];
    for (const message of messages) {
      // A failure here is one message's: it comes back after its visibility timeout, and the loop goes on.
      await take(message).then(
        () => taken.push(message.receiptHandle),
        (err: unknown) =>
          deps.log.warn("could not take a message; it comes back", { pool, error: String(err) }),
      );
    }
    // From the claim on, the lease keeps the run: the messages of one receive are deleted together (as SQS
    // advises for FIFO queues), and one left behind is found stale when it comes back.
    if (taken.length > 0) {
      await deps.queue.delete(pool, taken).catch((err: unknown) =>
        deps.log.warn("could not delete taken messages; they come back stale", {
          pool,
          error: String(err),
        }),
      );
    }
  }
  await drain(deps, jobs, options.drainSeconds);
  await protection.release();
  clearInterval(reporting);
  await report(true);
}

/** Lets running jobs finish for `seconds`, then stops the rest and hands their runs back to the queue. */
async function drain(
  deps: Deps,
  jobs: Map<string, { done: Promise<void>; stop: (r: StopReason) => void }>,
  seconds: number,
) {
  if (jobs.size === 0) return;
  deps.log.info("draining", { jobs: jobs.size, seconds });
  const all = Promise.all([...jobs.values()].map((j) => j.done));
  const timer = setTimeout(() => {
    for (const job of jobs.values()) job.stop("released");
  }, seconds * 1000);
  await all;
  clearTimeout(timer);
}

/** Runs one held run: keeps its lease, runs the CLI, stores its log and files, then settles it. */
function startJob(deps: Deps, first: HeldRun, options: WorkerOptions) {
  const controller = new AbortController();
  let stopReason: StopReason | undefined;
  const stop = (reason: StopReason) => {
    stopReason ??= reason;
    controller.abort(reason);
  };
  const lease = keepLease(deps, first, KILL_GRACE_MS, stop);

  const done = (async () => {
    let ending: RunEnding;
    /** A short log meant for the run record (not uploaded), while that record is not written. */
    let inlineLog: string | undefined;
    try {
      const job = await execute(deps, lease.held, options, controller.signal);
      if (stopReason !== undefined && stopReason !== "released") {
        // Canceled, taken by the tick, or fenced: the run is (or will be) ended elsewhere. Only its log
        // is kept, under its own run's key.
        await putLog(deps, lease.held, job.log).catch(warnFailedLog(deps, lease.held));
        if (stopReason === "canceled") await freeHeldSlot(deps, lease.held);
        return;
      }
      const logInline = logStaysOnRun(job.log, stopReason !== undefined);
      if (logInline) inlineLog = job.log;
      ending =
        stopReason === "released"
          ? { kind: "released", reason: "released: the worker was stopping" }
          : await finished(deps, lease.held, job, logInline);
    } catch (err) {
      // The job could not even start (e.g. an unsafe input path): a failed run, never a stuck one.
      const error = `the worker could not run the job: ${(err as Error).message}`;
      ending = { kind: "finished", outcome: { exitCode: null, error, files: [], tail: "", durationMs: 0 } };
    }
    // The lease is kept until the ending is recorded, however long the store takes to take it.
    const settled = await settleUntilRecorded(deps, lease, ending);
    lease.release();
    // Dropped: canceled as it ended. The process is gone, so the slots it kept can go.
    if (settled === undefined) await freeHeldSlot(deps, lease.held);
    if (inlineLog !== undefined && logMissedItsRun(settled, ending)) {
      await putLog(deps, lease.held, inlineLog).catch(warnFailedLog(deps, lease.held));
    }
  })().finally(() => lease.release());
  return { done, stop };
}

/**
 * Settles the run, trying again after any failure (throttling, a conflict on the pool item, a timeout)
 * until the store has it: the ending is recorded exactly once, or dropped because the run ended elsewhere.
 * The heartbeats go on meanwhile, so only a store that refuses both for longer than the lease makes it
 * give up: then the tick ends the run as lost, and the task is retried.
 */
async function settleUntilRecorded(deps: Deps, lease: Lease, ending: RunEnding): Promise<Task | undefined> {
  for (let failures = 1; ; failures++) {
    try {
      return await settleRun(deps, lease.held, ending);
    } catch (err) {
      if (settleGivenUp(lease.held, deps.clock.now())) {
        deps.log.error("gave up settling: the lease is long gone", { run_id: lease.held.run.run_id });
        return undefined;
      }
      deps.log.warn("settle failed; trying again", {
        run_id: lease.held.run.run_id,
        failures,
        error: String(err),
      });
      await sleep(retryAfterFailureMs(failures));
    }
  }
}

/** Tries `write` a few times, waiting longer after each failure. */
async function withRetries<T>(write: () => Promise<T>, tries = 4): Promise<T> {
  for (let failures = 1; ; failures++) {
    try {
      return await write();
    } catch (err) {
      if (failures >= tries) throw err;
      await sleep(retryAfterFailureMs(failures));
    }
  }
}

/** A canceled run's process is gone: the slots its task kept for it are freed (or by the tick, later). */
const freeHeldSlot = (deps: Deps, { task, run }: HeldRun) =>
  withRetries(() => releaseHeldSlot(deps, task.uuid, run.run_id)).catch((err: unknown) =>
    deps.log.warn("could not free a canceled run's slots; the tick frees them", {
      run_id: run.run_id,
      error: String(err),
    }),
  );

const warnFailedLog =
  (deps: Deps, { run }: HeldRun) =>
  (err: unknown) =>
    deps.log.warn("log upload failed", { run_id: run.run_id, error: String(err) });

/**
 * The ending of a job that ran to its end: its output files and log stored under its run. Output files
 * that cannot be stored fail the run (it is retried as any failure); a log that cannot be stored leaves
 * its tail on the run.
 */
async function finished(deps: Deps, held: HeldRun, job: JobOutcome, logInline: boolean): Promise<RunEnding> {
  const [log, files] = await Promise.allSettled([
    logInline || withRetries(() => putLog(deps, held, job.log)),
    withRetries(() => putOutputFiles(deps, held, job)),
  ]);
  if (log.status === "rejected") warnFailedLog(deps, held)(log.reason);
  if (files.status === "rejected") {
    const error = `the output files could not be stored: ${String(files.reason)}`;
    return { kind: "finished", outcome: { ...runOutcome(job, [], logInline), error } };
  }
  return { kind: "finished", outcome: runOutcome(job, files.value, logInline) };
}

async function execute(
  deps: Deps,
  held: HeldRun,
  options: WorkerOptions,
  signal: AbortSignal,
): Promise<JobOutcome> {
  const { task } = held;
  if (task.tool === "container" || task.prompt === undefined) {
    throw new Error(`task ${task.uuid} is a pod job: its pool's pods run it, not a CLI worker`);
  }
  const { tool, prompt } = task;
  const inputFiles = await Promise.all(
    task.input_files.map(async (name) => ({
      name,
      content: (await deps.blobs.get(blobKeys.input(task.uuid, name))) ?? new Uint8Array(),
    })),
  );
  return runJob(
    {
      tool,
      prompt,
      model: task.model,
      allowDangerousFlags: poolConfig(deps, task.pool).allow_dangerous_flags,
      inputFiles,
      outputFiles: task.output_files,
      timeoutSeconds: task.timeout,
      env: options.credentials,
    },
    { signal, killGraceMs: KILL_GRACE_MS },
  );
}

const putLog = (deps: Deps, { task, run }: HeldRun, log: string) =>
  deps.blobs.put(blobKeys.log(task.uuid, run.run_id), log, "text/plain; charset=utf-8");

/** The declared output files, under the run's own keys; returns their paths. */
async function putOutputFiles(deps: Deps, { task, run }: HeldRun, job: JobOutcome): Promise<string[]> {
  await Promise.all(
    job.outputFiles.map((f) => deps.blobs.put(blobKeys.output(task.uuid, run.run_id, f.path), f.content)),
  );
  return job.outputFiles.map((f) => f.path);
}

function runOutcome(job: JobOutcome, files: string[], logInline: boolean): RunOutcome {
  return {
    exitCode: job.exitCode,
    error: job.error,
    output: job.result.output,
    tokens: job.result.tokens,
    cost_usd: job.result.cost_usd,
    files,
    tail: logInline ? job.log : job.tail,
    logInline,
    durationMs: job.durationMs,
    rateLimit: job.rateLimit,
    permanent: job.permanent,
  };
}
