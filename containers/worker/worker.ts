import { setTimeout as sleep } from "node:timers/promises";
import {
  type HeldRun,
  logMissedItsRun,
  logStaysOnRun,
  type RunEnding,
  type RunOutcome,
  retryAfterFailureMs,
  settleGivenUp,
} from "../../core/execution.ts";
import type { Tool } from "../../core/fields.ts";
import { WORKER_REPORT_SECONDS } from "../../core/workers.ts";
import type { WorkerBackend, WorkerSettings } from "./backend.ts";
import { type JobOutcome, runJob } from "./job-runner.ts";
import { keepLease, type Lease, type LeaseEnd } from "./lease.ts";
import { scaleInProtection } from "./scale-in-protection.ts";
import { decodeSession, encodeSession, type SavedSession, type SessionFile } from "./sessions.ts";

export interface WorkerOptions {
  /** Long-poll wait; short locally so that shutdown is quick. */
  waitSeconds: number;
  /** The pool account's credentials, handed to the CLI and to nothing else. */
  credentials: Record<string, string>;
  /** Aborted on SIGTERM: take no more work, let running jobs finish within `drainSeconds`. */
  stopping: AbortSignal;
  drainSeconds: number;
  /**
   * How often a running job of a task that resumes saves its CLI session, so that the retry of a run lost
   * with its worker goes on from there (one PUT each time the session changed).
   */
  checkpointSeconds: number;
  /** The ECS agent's endpoint (ECS_AGENT_URI on Fargate): the task is protected from scale-in while busy. */
  ecsAgentUri?: string;
}

/** Protection a job asks for past its timeout: uploads, the settle, a slow kill. */
const PROTECTION_MARGIN_SECONDS = 120;

/** SIGTERM, then SIGKILL this long after, for timeouts, cancels and releases. */
const KILL_GRACE_MS = 2000;

/** Why a job's process was stopped before it ended by itself: its lease ended, or the worker is stopping. */
type StopReason = LeaseEnd | "released";

type Jobs = Map<string, { done: Promise<void>; stop: (reason: StopReason) => void }>;

/**
 * The pull loop of one pool's worker. It takes as many runs as it has free slots (long-polling the
 * pool's queue, through its backend) and runs each; from the claim on, the task's lease in DynamoDB is
 * what keeps the run, and the tick reclaims it if this process dies. A drain (DELETE /v2/workers/{id}),
 * which a report brings, ends the loop once the running jobs are done; SIGTERM ends it within
 * `drainSeconds`, handing back what is still running.
 */
export async function runWorker(backend: WorkerBackend, options: WorkerOptions): Promise<void> {
  const { waitSeconds, stopping } = options;
  const jobs: Jobs = new Map();
  const startedAt = backend.clock.now().toISOString();
  const first = await firstReport(backend, startedAt, stopping);
  if (!first) return;
  let settings: WorkerSettings = first;
  const report = async (stopped = false) => {
    try {
      const next = await backend.report([...jobs.keys()], startedAt, stopped);
      if (next) settings = next;
      else {
        backend.log.error("this worker was removed: stopping");
        settings = { ...settings, draining: true };
      }
    } catch (err) {
      backend.log.warn("worker report failed", { error: String(err) });
    }
    if (settings.draining) wake();
  };
  const protection = scaleInProtection(options.ecsAgentUri, backend);
  const reporting = setInterval(report, WORKER_REPORT_SECONDS * 1000);
  // A SIGTERM or a drain while every slot is busy must still end the loop, not wait for a job to end.
  let wake: () => void = () => undefined;
  const woken = new Promise<void>((resolve) => {
    wake = resolve;
    if (stopping.aborted) resolve();
    stopping.addEventListener("abort", () => resolve(), { once: true });
  });
  const working = () => !stopping.aborted && !settings.draining;
  while (working()) {
    if (jobs.size >= settings.slots) {
      await Promise.race([woken, ...[...jobs.values()].map((j) => j.done)]);
      continue;
    }
    let taken: HeldRun[];
    try {
      const claim = await backend.take(settings.slots - jobs.size, waitSeconds);
      if (claim.draining) settings = { ...settings, draining: true };
      taken = claim.runs;
    } catch (err) {
      if (!working()) break;
      backend.log.warn("taking work failed; retrying", { error: String(err) });
      await sleep(1000);
      continue;
    }
    for (const held of taken) {
      const runsFor = (held.task.timeout + PROTECTION_MARGIN_SECONDS) * 1000;
      void protection.protectUntil(new Date(backend.clock.now().getTime() + runsFor));
      const job = startJob(backend, held, settings, options);
      jobs.set(held.run.run_id, job);
      void job.done.finally(() => {
        jobs.delete(held.run.run_id);
        if (jobs.size === 0) void protection.release();
      });
    }
  }
  if (!stopping.aborted) backend.log.info("draining: finishing the running jobs", { jobs: jobs.size });
  await finishJobs(backend, jobs, stopping, options.drainSeconds);
  await protection.release();
  clearInterval(reporting);
  await report(true);
}

/** The first report, tried until it is answered: it gives the worker its slots. Undefined: stop now. */
async function firstReport(backend: WorkerBackend, startedAt: string, stopping: AbortSignal) {
  for (let failures = 1; !stopping.aborted; failures++) {
    try {
      const settings = await backend.report([], startedAt);
      if (!settings) backend.log.error("this worker was removed: its key no longer works");
      return settings;
    } catch (err) {
      backend.log.warn("worker report failed; trying again", { failures, error: String(err) });
      await sleep(retryAfterFailureMs(failures));
    }
  }
  return undefined;
}

/**
 * Waits for the running jobs: all of them when draining; when stopping (SIGTERM, now or later), for
 * `seconds`, then stops the rest and hands their runs back to the queue.
 */
async function finishJobs(backend: WorkerBackend, jobs: Jobs, stopping: AbortSignal, seconds: number) {
  if (jobs.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const handBack = () => {
    backend.log.info("stopping: handing back unfinished runs", { jobs: jobs.size, seconds });
    timer = setTimeout(() => {
      for (const job of jobs.values()) job.stop("released");
    }, seconds * 1000);
  };
  if (stopping.aborted) handBack();
  else stopping.addEventListener("abort", handBack, { once: true });
  await Promise.all([...jobs.values()].map((j) => j.done));
  stopping.removeEventListener("abort", handBack);
  clearTimeout(timer);
}

/** Runs one held run: keeps its lease, runs the CLI, stores its log and files, then settles it. */
function startJob(backend: WorkerBackend, first: HeldRun, settings: WorkerSettings, options: WorkerOptions) {
  const controller = new AbortController();
  let stopReason: StopReason | undefined;
  const stop = (reason: StopReason) => {
    stopReason ??= reason;
    controller.abort(reason);
  };
  const lease = keepLease(backend, first, settings.leaseSeconds, KILL_GRACE_MS, stop);

  const done = (async () => {
    let ending: RunEnding;
    /** A short log meant for the run record (not uploaded), while that record is not written. */
    let inlineLog: string | undefined;
    try {
      const job = await execute(backend, lease.held, settings, options, controller.signal);
      // Canceled or taken by the tick, the task needs no session from this run (its retry may run already).
      if (stopReason !== "canceled" && stopReason !== "lost") {
        await saveSession(backend, lease.held, job, stopReason ? STOPPED_BY[stopReason] : job.error);
      }
      if (stopReason !== undefined && stopReason !== "released") {
        // Canceled, taken by the tick, or fenced: the run is (or will be) ended elsewhere. Only its log
        // is kept, under its own run's key.
        await backend.putLog(lease.held, job.log).catch(warnFailedLog(backend, lease.held));
        if (stopReason === "canceled") await freeHeldSlot(backend, lease.held);
        return;
      }
      const logInline = logStaysOnRun(job.log, stopReason !== undefined);
      if (logInline) inlineLog = job.log;
      ending =
        stopReason === "released"
          ? { kind: "released", reason: "released: the worker was stopping" }
          : await finished(backend, lease.held, job, logInline);
    } catch (err) {
      // The job could not even start (e.g. an unsafe input path): a failed run, never a stuck one.
      const error = `the worker could not run the job: ${(err as Error).message}`;
      ending = { kind: "finished", outcome: { exitCode: null, error, files: [], tail: "", durationMs: 0 } };
    }
    // The lease is kept until the ending is recorded, however long the store takes to take it.
    const recorded = await settleUntilRecorded(backend, lease, ending);
    lease.release();
    // Dropped: canceled as it ended. The process is gone, so the slots it kept can go.
    if (!recorded) await freeHeldSlot(backend, lease.held);
    if (inlineLog !== undefined && logMissedItsRun(recorded, ending)) {
      await backend.putLog(lease.held, inlineLog).catch(warnFailedLog(backend, lease.held));
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
async function settleUntilRecorded(
  backend: WorkerBackend,
  lease: Lease,
  ending: RunEnding,
): Promise<boolean> {
  for (let failures = 1; ; failures++) {
    try {
      return await backend.settle(lease.held, ending);
    } catch (err) {
      if (settleGivenUp(lease.held, backend.clock.now())) {
        backend.log.error("gave up settling: the lease is long gone", { run_id: lease.held.run.run_id });
        return false;
      }
      backend.log.warn("settle failed; trying again", {
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
const freeHeldSlot = (backend: WorkerBackend, held: HeldRun) =>
  withRetries(() => backend.releaseHeldSlot(held)).catch((err: unknown) =>
    backend.log.warn("could not free a canceled run's slots; the tick frees them", {
      run_id: held.run.run_id,
      error: String(err),
    }),
  );

const warnFailedLog =
  (backend: WorkerBackend, { run }: HeldRun) =>
  (err: unknown) =>
    backend.log.warn("log upload failed", { run_id: run.run_id, error: String(err) });

/**
 * The ending of a job that ran to its end: its output files and log stored under its run. Output files
 * that cannot be stored fail the run (it is retried as any failure); a log that cannot be stored leaves
 * its tail on the run.
 */
async function finished(
  backend: WorkerBackend,
  held: HeldRun,
  job: WorkerJob,
  logInline: boolean,
): Promise<RunEnding> {
  const [log, files] = await Promise.allSettled([
    logInline || withRetries(() => backend.putLog(held, job.log)),
    job.outputFiles.length > 0 && withRetries(() => backend.putOutputFiles(held, job.outputFiles)),
  ]);
  if (log.status === "rejected") warnFailedLog(backend, held)(log.reason);
  if (files.status === "rejected") {
    const error = `the output files could not be stored: ${String(files.reason)}`;
    return { kind: "finished", outcome: { ...runOutcome(job, [], logInline), error } };
  }
  return {
    kind: "finished",
    outcome: runOutcome(
      job,
      job.outputFiles.map((f) => f.path),
      logInline,
    ),
  };
}

/** A job of a CLI, and the run whose saved session it took up. */
type WorkerJob = JobOutcome & { tool: Tool; resumedFrom?: string };

/** Why a run stopped, as a resumed CLI is told, when it went on from a checkpoint: its worker died. */
const LOST = "its worker stopped before it ended";

/** Why a run stopped, as a resumed CLI is told, when its worker stopped it. */
const STOPPED_BY = {
  released: "its worker was shutting down",
  fenced: "its worker lost contact with the scheduler",
} as const;

async function execute(
  backend: WorkerBackend,
  held: HeldRun,
  settings: WorkerSettings,
  options: WorkerOptions,
  signal: AbortSignal,
): Promise<WorkerJob> {
  const { task } = held;
  if (task.tool === "container" || task.prompt === undefined) {
    throw new Error(`task ${task.uuid} is a pod job: its pool's pods run it, not a CLI worker`);
  }
  const { tool, prompt } = task;
  const inputFiles = await Promise.all(
    task.input_files.map(async (name) => ({ name, content: await backend.inputFile(held, name) })),
  );
  const resumes = task.resume ?? settings.resume;
  const saved = resumes ? await savedSession(backend, held) : undefined;
  const job = await runJob(
    {
      tool,
      prompt,
      model: task.model,
      allowDangerousFlags: settings.allowDangerousFlags,
      inputFiles,
      outputFiles: task.output_files,
      timeoutSeconds: task.timeout,
      maxTurns: task.max_turns,
      maxBudgetUsd: task.max_budget_usd,
      env: options.credentials,
      ...(resumes && {
        session: {
          restore: saved && { sessionId: saved.session_id, files: saved.files, ended: saved.ended },
          checkpoint: {
            everyMs: options.checkpointSeconds * 1000,
            save: (state, sessionId) =>
              storeSession(backend, held, tool, { ...state, sessionId, ended: LOST }),
          },
        },
      }),
    },
    { signal, killGraceMs: KILL_GRACE_MS },
  );
  return { ...job, tool, ...(job.resumed && saved && { resumedFrom: saved.run_id }) };
}

/**
 * The session an earlier run of this task and occurrence saved, if any. One that cannot be read is
 * passed over: the run starts over rather than not at all.
 */
async function savedSession(backend: WorkerBackend, held: HeldRun): Promise<SavedSession | undefined> {
  const { task, run } = held;
  try {
    const bytes = await withRetries(() => backend.getSession(held));
    const saved = bytes && decodeSession(bytes);
    const ours = saved?.tool === task.tool && saved.occurrence === run.occurrence;
    return ours && saved.run_id !== run.run_id ? saved : undefined;
  } catch (err) {
    backend.log.warn("could not read the saved session; starting over", {
      run_id: run.run_id,
      error: String(err),
    });
    return undefined;
  }
}

/**
 * Saves the CLI session of a run that did not succeed (and wrote to its session), before the run is
 * settled, so that the retry finds it; or marks a session the CLI could not take up as spent. A session
 * that cannot be stored only costs the retry its head start.
 */
async function saveSession(
  backend: WorkerBackend,
  held: HeldRun,
  job: WorkerJob,
  ended: string | undefined,
): Promise<void> {
  if (job.error === undefined || ended === undefined) return;
  // A resumed CLI that failed without writing to its session could not take it up (a CLI whose format
  // changed, say): it is spent, and the next attempt starts over.
  if (!job.session && !job.resumed) return;
  const session = job.session
    ? { files: job.session.files, sessionId: job.signals.sessionId, ended }
    : { files: [], ended };
  await withRetries(() => storeSession(backend, held, job.tool, session)).catch((err: unknown) =>
    backend.log.warn("could not save the CLI session; the retry starts over", {
      run_id: held.run.run_id,
      error: String(err),
    }),
  );
}

/** Stores the task's session as this run leaves it (blobKeys.session: one per task, the latest). */
function storeSession(
  backend: WorkerBackend,
  held: HeldRun,
  tool: Tool,
  session: { files: SessionFile[]; sessionId?: string; ended: string },
): Promise<void> {
  const saved = encodeSession({
    tool,
    run_id: held.run.run_id,
    occurrence: held.run.occurrence,
    session_id: session.sessionId,
    ended: session.ended,
    files: session.files,
  });
  return backend.putSession(held, saved);
}

function runOutcome(job: WorkerJob, files: string[], logInline: boolean): RunOutcome {
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
    usage: job.signals.usage,
    sessionId: job.signals.sessionId,
    resumedFrom: job.resumedFrom,
    permanent: job.permanent,
  };
}
