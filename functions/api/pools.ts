import type * as z from "zod";
import { dispatcherStatus, setDispatcher, setPoolPaused } from "../../core/controls.ts";
import type { dispatcherStatusQuery } from "../../core/requests.ts";
import { listWorkers } from "../../core/workers.ts";
import type { RouteFn } from "../_shared/http.ts";

/** Admin controls: pools, the dispatcher switch, and the workers serving. */

export const pause: RouteFn = async (deps, { principal, params }) => ({
  data: await setPoolPaused(deps, principal, params.name ?? "", true),
});

export const resume: RouteFn = async (deps, { principal, params }) => ({
  data: await setPoolPaused(deps, principal, params.name ?? "", false),
});

export const startDispatcher: RouteFn = async (deps, { principal }) => ({
  data: await setDispatcher(deps, principal, true),
});

export const stopDispatcher: RouteFn = async (deps, { principal }) => ({
  data: await setDispatcher(deps, principal, false),
});

export const dispatcher: RouteFn<unknown, z.output<typeof dispatcherStatusQuery>> = async (
  deps,
  { principal, query },
) => ({
  data: await dispatcherStatus(deps, principal, query.tenant),
});

export const workers: RouteFn = async (deps, { principal }) => ({ data: await listWorkers(deps, principal) });
