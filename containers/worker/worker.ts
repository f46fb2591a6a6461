import { decodeDispatch, poolConfig } from "../../core/admission.ts";
import type { Deps } from "../../core/deps.ts";
import {
  claimRun,
  type HeldRun,
  heartbeat,
  logMissedItsRun,
  logStaysOnRun,
  type RunEnding,
  type RunOutcome,
  settleRun,
} from "../../core/execution.ts";
import { blobKeys } from "../../core/identifiers.ts";
import { reportWorker, WORKER_REPORT_SECONDS } from "../../core/workers.ts";
import { type JobOutcome, runJob } from "./job-runner.ts";
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

/** Why a job's process was stopped before it ended by itself. */
type StopReason = "canceled" | "lost" | "released";

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
    for (const message of messages) {
      const body = decodeDispatch(message.body);
      if (!body) {
        // Nothing Switchyard sent: no run to claim, and it would only come back.
        deps.log.warn("dropped a malformed message", { pool, body: message.body.slice(0, 200) });
        await deps.queue.delete(pool, message.receiptHandle);
        continue;
      }
      const claim = await claimRun(deps, body, options.workerId);
      await deps.queue.delete(pool, message.receiptHandle);
      if (!claim.claimed) {
        deps.log.info("dropped message", { run_id: body.run_id, reason: claim.reason });
        continue;
      }
      const runsFor = (claim.held.task.timeout + PROTECTION_MARGIN_SECONDS) * 1000;
      void protection.protectUntil(new Date(deps.clock.now().getTime() + runsFor));
      const job = startJob(deps, claim.held, options);
      jobs.set(body.run_id, job);
      void job.done.finally(() => {
        jobs.delete(body.run_id);
        if (jobs.size === 0) void protection.release();
      });
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

/** Runs one held run: heartbeats, the CLI, logs and files to S3, then settles it. */
function startJob(deps: Deps, first: HeldRun, options: WorkerOptions) {
  const controller = new AbortController();
  let stopReason: StopReason | undefined;
  const stop = (reason: StopReason) => {
    stopReason ??= reason;
    controller.abort(reason);
  };
  let held = first;
  const beatEvery = (poolConfig(deps, held.task.pool).lease_seconds * 1000) / 3;
  const beats = setInterval(async () => {
    const beat = await heartbeat(deps, held).catch((err: unknown) => {
      deps.log.warn("heartbeat failed", { run_id: held.run.run_id, error: String(err) });
      return undefined;
    });
    if (beat && "held" in beat) held = beat.held;
    else if (beat) stop(beat.stop);
  }, beatEvery);

  const done = (async () => {
    let ending: RunEnding;
    /** A short log meant for the run record (not uploaded), while that record is not written. */
    let inlineLog: string | undefined;
    try {
      const outcome = await execute(deps, held, options, controller.signal);
      const logInline = logStaysOnRun(outcome.log, stopReason !== undefined);
      if (logInline) inlineLog = outcome.log;
      const files = await upload(deps, held, outcome, logInline);
      ending =
        stopReason === "released"
          ? { kind: "released", reason: "released: the worker was stopping" }
          : { kind: "finished", outcome: runOutcome(outcome, files, logInline) };
    } catch (err) {
      // The job could not even start (e.g. an unsafe input path): a failed run, never a stuck one.
      const error = `the worker could not run the job: ${(err as Error).message}`;
      ending = { kind: "finished", outcome: { exitCode: null, error, files: [], tail: "", durationMs: 0 } };
    } finally {
      clearInterval(beats);
    }
    // Whoever stopped it (cancel, a reclaimed lease) ended the run.
    const stoppedElsewhere = stopReason === "canceled" || stopReason === "lost";
    const settled = stoppedElsewhere
      ? undefined
      : await settleRun(deps, held, ending).catch((err: unknown) => {
          deps.log.error("settling failed; the lease will expire and the tick retries", {
            run_id: held.run.run_id,
            error: String(err),
          });
          return undefined;
        });
    if (inlineLog !== undefined && logMissedItsRun(settled, ending)) {
      await putLog(deps, held, inlineLog).catch((err: unknown) =>
        deps.log.warn("log upload failed", { run_id: held.run.run_id, error: String(err) }),
      );
    }
  })();
  return { done, stop };
}

async function execute(
  deps: Deps,
  held: HeldRun,
  options: WorkerOptions,
  signal: AbortSignal,
): Promise<JobOutcome> {
  const { task } = held;
  const inputFiles = await Promise.all(
    task.input_files.map(async (name) => ({
      name,
      content: (await deps.blobs.get(blobKeys.input(task.uuid, name))) ?? new Uint8Array(),
    })),
  );
  return runJob(
    {
      tool: task.tool,
      prompt: task.prompt,
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

/** The full log (unless it stays on the run) and the declared output files go to S3; returns the uploaded paths. */
async function upload(deps: Deps, held: HeldRun, outcome: JobOutcome, logInline: boolean): Promise<string[]> {
  await Promise.all([
    logInline || putLog(deps, held, outcome.log),
    ...outcome.outputFiles.map((f) => deps.blobs.put(blobKeys.output(held.task.uuid, f.path), f.content)),
  ]);
  return outcome.outputFiles.map((f) => f.path);
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
