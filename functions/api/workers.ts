import type * as z from "zod";
import type {
  claimWorkBody,
  registerWorkerBody,
  SettleWorkBody,
  uploadsBody,
  workerReportBody,
} from "../../core/requests.ts";
import { checkIn, claimWork, releaseWork, renewLease, settleWork, uploadUrls } from "../../core/work.ts";
import { drainWorker, listWorkers, registerWorker } from "../../core/workers.ts";
import type { RouteFn } from "../_shared/http.ts";

/** The workers: admin routes that register, list and drain them; the routes a self-hosted worker works by. */

export const list: RouteFn = async (deps, { principal }) => ({ data: await listWorkers(deps, principal) });

export const register: RouteFn<z.output<typeof registerWorkerBody>> = async (deps, { principal, body }) => ({
  status: 201,
  data: await registerWorker(deps, principal, body),
});

export const drain: RouteFn = async (deps, { principal, params }) => ({
  data: await drainWorker(deps, principal, params.id ?? ""),
});

export const report: RouteFn<z.output<typeof workerReportBody>> = async (deps, { principal, body }) => ({
  data: await checkIn(deps, principal, body),
});

export const claim: RouteFn<z.output<typeof claimWorkBody>> = async (deps, { principal, body }) => ({
  data: await claimWork(deps, principal, body),
});

export const lease: RouteFn = async (deps, { principal, params }) => ({
  data: await renewLease(deps, principal, params.run_id ?? ""),
});

export const settle: RouteFn<SettleWorkBody> = async (deps, { principal, params, body }) => ({
  data: await settleWork(deps, principal, params.run_id ?? "", body),
});

export const release: RouteFn = async (deps, { principal, params }) => ({
  data: await releaseWork(deps, principal, params.run_id ?? ""),
});

export const uploads: RouteFn<z.output<typeof uploadsBody>> = async (deps, { principal, params, body }) => ({
  data: await uploadUrls(deps, principal, params.run_id ?? "", body),
});
