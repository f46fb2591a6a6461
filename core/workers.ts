import { type Principal, requireScope } from "./auth.ts";
import type { Deps } from "./deps.ts";

/** A worker reports itself this often; its record lapses after three missed reports. */
export const WORKER_REPORT_SECONDS = 30;
const WORKER_RECORD_TTL_SECONDS = 3 * WORKER_REPORT_SECONDS;

export interface WorkerReport {
  workerId: string;
  pool: string;
  slots: number;
  running: number;
  startedAt: string;
  /** A stopping worker's last report ends its record at once. */
  stopped?: boolean;
}

/** Registers or refreshes a worker, so that the API can list who is serving each pool. */
export async function reportWorker(
  deps: Pick<Deps, "workers" | "clock">,
  report: WorkerReport,
): Promise<void> {
  const now = deps.clock.now();
  const nowSeconds = Math.floor(now.getTime() / 1000);
  await deps.workers.recordWorker({
    worker_id: report.workerId,
    pool: report.pool,
    slots: report.slots,
    running: report.running,
    started_at: report.startedAt,
    last_seen: now.toISOString(),
    expires_at: report.stopped ? nowSeconds : nowSeconds + WORKER_RECORD_TTL_SECONDS,
  });
}

/** The workers serving now (admin): each one's pool, slots and running jobs, by pool then id. */
export async function listWorkers(deps: Pick<Deps, "workers" | "clock">, principal: Principal) {
  requireScope(principal, "admin");
  const workers = await deps.workers.listWorkers(Math.floor(deps.clock.now().getTime() / 1000));
  return workers.map(({ expires_at: _expires, ...worker }) => worker);
}
