import { randomBytes } from "node:crypto";
import type * as z from "zod";
import { poolConfig } from "./admission.ts";
import { newApiKey, type Principal, requireScope } from "./auth.ts";
import { isCliPool } from "./config.ts";
import type { Deps } from "./deps.ts";
import { ERROR_CODES, NotFoundError, ValidationError } from "./errors.ts";
import type { WorkerRecord } from "./records.ts";
import type { registerWorkerBody } from "./requests.ts";

/** A worker reports itself this often; it counts as live until it has missed three reports. */
export const WORKER_REPORT_SECONDS = 30;
const LIVE_SECONDS = 3 * WORKER_REPORT_SECONDS;

export interface WorkerReport {
  workerId: string;
  pool: string;
  /** A Fargate worker's; a self-hosted worker's are its registration's. */
  slots?: number;
  /** The runs it is running. */
  jobs: string[];
  startedAt: string;
  /** A stopping worker's last report: it is no longer live. */
  stopped?: boolean;
}

const nowSeconds = (deps: Pick<Deps, "clock">) => Math.floor(deps.clock.now().getTime() / 1000);

/** Whether a worker is serving now: it reported within the last three report periods. */
export const isLive = (worker: WorkerRecord, now: number) => worker.live_until > now;

/**
 * Records a worker's report (one write). A Fargate worker's record expires once it stops reporting; a
 * self-hosted one's (`registered`) stays until it is removed. Answers the record as it now is, whose
 * `draining` tells the worker to take no more work; undefined when a self-hosted worker was removed. A
 * draining self-hosted worker's last report removes it, and its key with it.
 */
export async function reportWorker(
  deps: Pick<Deps, "workers" | "clock">,
  report: WorkerReport,
  registered = false,
): Promise<WorkerRecord | undefined> {
  const now = nowSeconds(deps);
  const liveUntil = report.stopped ? now : now + LIVE_SECONDS;
  const record = await deps.workers.reportWorker(
    {
      worker_id: report.workerId,
      pool: report.pool,
      slots: report.slots,
      running: report.jobs.length,
      jobs: report.jobs,
      started_at: report.startedAt,
      last_seen: deps.clock.now().toISOString(),
      live_until: liveUntil,
      ...(!registered && { expires_at: liveUntil }),
    },
    registered,
  );
  if (record && registered && report.stopped && record.draining) await deps.workers.removeWorker(record);
  return record;
}

const WORKER_ID = /^[A-Za-z0-9._-]{1,200}$/;
const workerNotFound = (id: string) =>
  new NotFoundError(ERROR_CODES.workerNotFound, `worker ${id.slice(0, 128)} not found`);

/** The jobs a registered worker runs at once: its `resources.slots`, else its pool's `worker.slots`. */
const slotsOf = (deps: Pick<Deps, "config">, pool: string, resources: WorkerRecord["resources"]) =>
  typeof resources?.slots === "number" ? resources.slots : poolConfig(deps, pool).worker.slots;

/**
 * Registers a self-hosted worker of a CLI pool (admin). Its key, in the answer once and stored only as
 * its hash, lets it take that pool's work through the API and nothing else.
 */
export async function registerWorker(
  deps: Pick<Deps, "workers" | "clock" | "config">,
  principal: Principal,
  body: z.output<typeof registerWorkerBody>,
) {
  requireScope(principal, "admin");
  const pool = deps.config.pools.find((p) => p.name === body.pool);
  if (!pool) throw new ValidationError("pool", `no pool ${body.pool}`);
  if (!isCliPool(pool))
    throw new ValidationError("pool", `${pool.name} is a container pool: its pods run its jobs`);
  const { apiKey, keyId, keyHash } = newApiKey("syw");
  const iso = deps.clock.now().toISOString();
  const worker: WorkerRecord = {
    worker_id: `wrk_${randomBytes(8).toString("hex")}`,
    pool: pool.name,
    slots: slotsOf(deps, pool.name, body.resources),
    running: 0,
    live_until: 0,
    registered_at: iso,
    host: body.host,
    resources: body.resources,
    key_hash: keyHash,
  };
  await deps.workers.registerWorker(worker, {
    key_id: keyId,
    key_hash: keyHash,
    worker_id: worker.worker_id,
    pool: pool.name,
    create_time: iso,
  });
  return { worker_id: worker.worker_id, api_key: apiKey, pool: pool.name, slots: worker.slots };
}

/**
 * Drains a worker (admin): it takes no new work, finishes what it runs, then exits. A self-hosted worker
 * that is not live is removed at once (its key stops working); so is one whose drain has ended.
 */
export async function drainWorker(deps: Pick<Deps, "workers" | "clock">, principal: Principal, id: string) {
  requireScope(principal, "admin");
  // A registered worker's id (wrk_…) or a Fargate worker's (host-pid): anything else is never looked up.
  if (!WORKER_ID.test(id)) throw workerNotFound(id);
  const worker = await deps.workers.getWorker(id);
  const live = worker !== undefined && isLive(worker, nowSeconds(deps));
  if (worker?.registered_at !== undefined && !live) {
    await deps.workers.removeWorker(worker);
    return { worker_id: id, state: "removed" as const };
  }
  if (!live || !(await deps.workers.drainWorker(id))) throw workerNotFound(id);
  return { worker_id: id, state: "draining" as const };
}

export type WorkerState = "active" | "draining" | "offline";

/** A worker as the API shows it. */
function workerView(worker: WorkerRecord, now: number) {
  const state: WorkerState = !isLive(worker, now) ? "offline" : worker.draining ? "draining" : "active";
  return {
    worker_id: worker.worker_id,
    pool: worker.pool,
    state,
    self_hosted: worker.registered_at !== undefined,
    host: worker.host,
    // By name: the store keeps no order.
    resources: Object.fromEntries(
      Object.entries(worker.resources ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)),
    ),
    slots: worker.slots,
    running: worker.running,
    jobs: worker.jobs ?? [],
    started_at: worker.started_at,
    last_seen: worker.last_seen,
    registered_at: worker.registered_at,
  };
}

/**
 * The workers (admin), by pool then id: the live ones, and the self-hosted ones registered but not
 * serving now (`offline`). Each with its resources, state, slots and running jobs.
 */
export async function listWorkers(deps: Pick<Deps, "workers" | "clock">, principal: Principal) {
  requireScope(principal, "admin");
  const now = nowSeconds(deps);
  const workers = await deps.workers.listWorkers(now);
  return workers
    .filter((w) => isLive(w, now) || w.registered_at !== undefined)
    .map((w) => workerView(w, now));
}

/** The workers serving now, of every pool. */
export const liveWorkers = async (deps: Pick<Deps, "workers" | "clock">) => {
  const now = nowSeconds(deps);
  return (await deps.workers.listWorkers(now)).filter((w) => isLive(w, now));
};
