import type * as z from "zod";
import { decodeDispatch, poolConfig } from "./admission.ts";
import { type Principal, requireScope } from "./auth.ts";
import type { Deps } from "./deps.ts";
import { ForbiddenError, runNotFound, UnauthorizedError, ValidationError } from "./errors.ts";
import { claimRun, type HeldRun, heartbeat, type RunEnding, settleRun, truncate } from "./execution.ts";
import { blobKeys, LOG_CONTENT_TYPE, SESSION_CONTENT_TYPE, taskUuidOfRun } from "./identifiers.ts";
import {
  type claimWorkBody,
  SETTLE_TEXT_LIMITS,
  type SettleWorkBody,
  type uploadsBody,
  type workerReportBody,
} from "./requests.ts";
import { releaseHeldSlot } from "./tasks.ts";
import { reportWorker } from "./workers.ts";

export interface TakeWork {
  pool: string;
  workerId: string;
  /** Runs to take at most (a worker's free slots; SQS gives 10 at most). */
  max: number;
  /** Long-poll wait for a first message. */
  waitSeconds: number;
}

/**
 * Takes up to `max` of a pool's dispatched runs for a worker: long-polls the pool's FIFO queue, claims
 * each message's run (a stale or duplicate message is dropped), and deletes the messages. From the claim
 * on, the task's lease is what keeps the run: if the worker never hears of it, or dies, the tick
 * reclaims it when the lease runs out. The Fargate worker calls this directly, a self-hosted worker
 * through the API (POST /v2/worker/claims).
 */
export async function takeWork(
  deps: Deps,
  { pool, workerId, max, waitSeconds }: TakeWork,
): Promise<HeldRun[]> {
  const messages = await deps.queue.receive(pool, Math.min(10, max), waitSeconds);
  const held: HeldRun[] = [];
  const taken: string[] = [];
  for (const message of messages) {
    // A failure here is one message's: it comes back after its visibility timeout, and the others go on.
    try {
      const body = decodeDispatch(message.body);
      if (!body) {
        // Nothing Switchyard sent: no run to claim, and it would only come back.
        deps.log.warn("dropped a malformed message", { pool, body: message.body.slice(0, 200) });
      } else {
        const claim = await claimRun(deps, body, workerId);
        if (claim.claimed) held.push(claim.held);
        else deps.log.info("dropped message", { run_id: body.run_id, reason: claim.reason });
      }
      taken.push(message.receiptHandle);
    } catch (err) {
      deps.log.warn("could not take a message; it comes back", { pool, error: String(err) });
    }
  }
  // The messages of one receive are deleted together (as SQS advises for FIFO queues); one left behind is
  // found stale when it comes back.
  if (taken.length > 0) {
    await deps.queue
      .delete(pool, taken)
      .catch((err: unknown) =>
        deps.log.warn("could not delete taken messages; they come back stale", { pool, error: String(err) }),
      );
  }
  return held;
}

/** How long a URL to a job's file lasts (core/ports.ts BlobStore.url). */
const FILE_URL_SECONDS = 15 * 60;

/** The self-hosted worker a key is: only such a key takes work. */
function workerOf(principal: Principal) {
  requireScope(principal, "worker");
  if (principal.kind !== "worker") throw new ForbiddenError("only a worker's key takes work");
  return principal;
}

type WorkerPrincipal = ReturnType<typeof workerOf>;

const removed = () => new UnauthorizedError("this worker was removed: its key no longer works");

/**
 * A self-hosted worker's report (POST /v2/worker/report), every WORKER_REPORT_SECONDS: answers its
 * settings (its pool's, as reloaded) and whether it is draining.
 */
export async function checkIn(deps: Deps, principal: Principal, body: z.output<typeof workerReportBody>) {
  const me = workerOf(principal);
  const report = { workerId: me.workerId, pool: me.pool, jobs: body.jobs, startedAt: body.started_at };
  const record = await reportWorker(deps, { ...report, stopped: body.stopped }, true);
  if (!record) throw removed();
  const pool = poolConfig(deps, me.pool);
  return {
    worker_id: me.workerId,
    pool: me.pool,
    slots: record.slots,
    draining: record.draining === true,
    lease_seconds: pool.lease_seconds,
    allow_dangerous_flags: pool.allow_dangerous_flags,
    resume: pool.resume,
  };
}

/**
 * Takes work for a self-hosted worker (POST /v2/worker/claims): as takeWork, with a URL to read each
 * input file and, for a CLI task, its saved session. A draining worker takes none; a drain that comes during a long poll applies to the next.
 */
export async function claimWork(deps: Deps, principal: Principal, body: z.output<typeof claimWorkBody>) {
  const me = workerOf(principal);
  const worker = await deps.workers.getWorker(me.workerId);
  if (!worker) throw removed();
  if (worker.draining) return { draining: true, runs: [] };
  const max = Math.min(body.max, worker.slots);
  const held = await takeWork(deps, {
    pool: me.pool,
    workerId: me.workerId,
    max,
    waitSeconds: body.wait_seconds,
  });
  const runs = await Promise.all(
    held.map(async ({ task, run }) => {
      const urls = task.input_files.map(async (name) => {
        const url = await deps.blobs.url(blobKeys.input(task.uuid, name), "GET", FILE_URL_SECONDS);
        return [name, url] as const;
      });
      const session =
        task.tool === "container"
          ? undefined
          : await deps.blobs.url(blobKeys.session(task.uuid), "GET", FILE_URL_SECONDS);
      return { task, run, inputs: Object.fromEntries(await Promise.all(urls)), session };
    }),
  );
  return { draining: false, runs };
}

/** The run, if this worker ran it in its pool; any other is a 404, so run ids do not leak. */
async function workersRun(deps: Deps, me: WorkerPrincipal, runId: string): Promise<HeldRun> {
  const uuid = taskUuidOfRun(runId);
  const [task, run] = uuid
    ? await Promise.all([deps.tasks.getTask(uuid), deps.tasks.getRun(uuid, runId)])
    : [undefined, undefined];
  if (!task || !run || run.worker !== me.workerId || run.pool !== me.pool) throw runNotFound(runId);
  return { task, run };
}

/**
 * Extends a self-hosted worker's lease on a run (POST /v2/worker/runs/{run_id}/lease), from the records
 * as stored, never as the worker sends them: answers the new expiry, or why to stop.
 */
export async function renewLease(deps: Deps, principal: Principal, runId: string) {
  const held = await workersRun(deps, workerOf(principal), runId);
  if (held.task.status === "canceled") return { stop: "canceled" as const };
  if (held.task.status !== "running" || held.task.run_id !== runId) return { stop: "lost" as const };
  const result = await heartbeat(deps, held);
  return "stop" in result ? result : { lease_expires_at: result.held.task.lease_expires_at as string };
}

/** Ends a self-hosted worker's run (POST …/settle) as settleRun does; `settled` false: it ended elsewhere. */
export async function settleWork(deps: Deps, principal: Principal, runId: string, body: SettleWorkBody) {
  const held = await workersRun(deps, workerOf(principal), runId);
  return { settled: (await settleRun(deps, held, endingOf(body))) !== undefined };
}

/** Frees the slots a canceled run kept, once its process is gone (POST …/release). */
export async function releaseWork(deps: Deps, principal: Principal, runId: string) {
  const { task, run } = await workersRun(deps, workerOf(principal), runId);
  return { released: await releaseHeldSlot(deps, task.uuid, run.run_id) };
}

/**
 * URLs to PUT a run's log and its declared output files to (POST …/uploads), each under the run's own
 * keys, and the task's saved CLI session (one per task: the latest unfinished run's).
 */
export async function uploadUrls(
  deps: Deps,
  principal: Principal,
  runId: string,
  body: z.output<typeof uploadsBody>,
) {
  const { task, run } = await workersRun(deps, workerOf(principal), runId);
  const undeclared = body.files.find((path) => !task.output_files.includes(path));
  if (undeclared)
    throw new ValidationError("files", `${undeclared} is not an output file of task ${task.uuid}`);
  const put = (key: string, contentType?: string) =>
    deps.blobs.url(key, "PUT", FILE_URL_SECONDS, contentType);
  const files = body.files.map(async (path) => [
    path,
    await put(blobKeys.output(task.uuid, run.run_id, path)),
  ]);
  return {
    log: body.log ? await put(blobKeys.log(task.uuid, run.run_id), LOG_CONTENT_TYPE) : undefined,
    session: body.session ? await put(blobKeys.session(task.uuid), SESSION_CONTENT_TYPE) : undefined,
    files: Object.fromEntries(await Promise.all(files)) as Record<string, string>,
  };
}

/** A run's ending as a settle's body: the wire shape, its texts cut to what the route takes. */
export function settleBodyOf(ending: RunEnding): SettleWorkBody {
  if (ending.kind !== "finished") return { released: truncate(ending.reason, 1_000) };
  const { outcome } = ending;
  const cut = (text: string | undefined, limit: number) =>
    text === undefined ? undefined : truncate(text, limit - 100);
  return {
    outcome: {
      exit_code: outcome.exitCode,
      error: cut(outcome.error, SETTLE_TEXT_LIMITS.error),
      output: cut(outcome.output, SETTLE_TEXT_LIMITS.output),
      tokens: outcome.tokens,
      cost_usd: outcome.cost_usd,
      files: outcome.files,
      tail: cut(outcome.tail, SETTLE_TEXT_LIMITS.tail) ?? "",
      log_inline: outcome.logInline,
      duration_ms: outcome.durationMs,
      rate_limit: outcome.rateLimit && {
        reset_at: outcome.rateLimit.resetAt?.toISOString(),
        window: outcome.rateLimit.window,
        source: outcome.rateLimit.source,
      },
      usage: outcome.usage && {
        status: outcome.usage.status,
        window: outcome.usage.window,
        reset_at: outcome.usage.resetAt?.toISOString(),
        utilization: outcome.usage.utilization,
        overage: outcome.usage.overage,
      },
      session_id: outcome.sessionId,
      resumed_from: outcome.resumedFrom,
      permanent: outcome.permanent,
    },
  };
}

/** The ending a settle's body tells. */
function endingOf(body: SettleWorkBody): RunEnding {
  if ("released" in body) return { kind: "released", reason: body.released };
  const { outcome } = body;
  const dateOf = (iso: string | undefined) => (iso === undefined ? undefined : new Date(iso));
  const { rate_limit: limit, usage } = outcome;
  return {
    kind: "finished",
    outcome: {
      exitCode: outcome.exit_code,
      error: outcome.error,
      output: outcome.output,
      tokens: outcome.tokens,
      cost_usd: outcome.cost_usd,
      files: outcome.files,
      tail: outcome.tail,
      logInline: outcome.log_inline,
      durationMs: outcome.duration_ms,
      rateLimit: limit && { resetAt: dateOf(limit.reset_at), window: limit.window, source: limit.source },
      usage: usage && {
        status: usage.status,
        window: usage.window,
        resetAt: dateOf(usage.reset_at),
        utilization: usage.utilization,
        overage: usage.overage,
      },
      sessionId: outcome.session_id,
      resumedFrom: outcome.resumed_from,
      permanent: outcome.permanent,
    },
  };
}
