import type * as z from "zod";
import { dispatcherStatus, setDispatcher, setPoolPaused } from "../../core/controls.ts";
import { reloadConfig } from "../../core/live-config.ts";
import { listPolicies } from "../../core/policies.ts";
import { getPool, getQueue, listPools, listQueues } from "../../core/queues.ts";
import type { dispatcherStatusQuery, queueQuery, queuesQuery, verboseQuery } from "../../core/requests.ts";
import { listSlas } from "../../core/slas.ts";
import { systemStatus } from "../../core/system-status.ts";
import { listToolAccounts, setToolAccountState } from "../../core/tool-accounts.ts";
import type { RouteFn } from "../_shared/http.ts";

/** The pools and their queues, for every key; admin controls: pauses, the dispatcher switch. */

export const list: RouteFn = async (deps, { principal }) => ({ data: await listPools(deps, principal) });

export const get: RouteFn<unknown, z.output<typeof verboseQuery>> = async (
  deps,
  { principal, params, query },
) => ({
  data: await getPool(deps, principal, params.name ?? "", query.verbose),
});

export const queues: RouteFn<unknown, z.output<typeof queuesQuery>> = async (deps, { principal, query }) => ({
  data: await listQueues(deps, principal, query.priority),
});

export const queue: RouteFn<unknown, z.output<typeof queueQuery>> = async (
  deps,
  { principal, params, query },
) => ({
  data: await getQueue(deps, principal, params.name ?? "", query),
});

export const policies: RouteFn = async (deps, { principal }) => ({ data: listPolicies(deps, principal) });
/** The v2 API's spelling of the same route (a function of its own: its name is its operation id). */
export const policys: RouteFn = (deps, request) => policies(deps, request);

/** The v2 API's answer, `data: "reload OK"`, with what changed beside it in the envelope. */
export const reload: RouteFn = async (deps, { principal }) => {
  const { changes, warnings } = await reloadConfig(deps, principal);
  return { data: "reload OK", beside: { changes, warnings } };
};

export const slas: RouteFn = async (deps, { principal }) => ({ data: await listSlas(deps, principal) });

export const status: RouteFn = async (deps, { principal }) => ({ data: await systemStatus(deps, principal) });

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
  data: await dispatcherStatus(deps, principal, query),
});

export const toolAccounts: RouteFn = async (deps, { principal }) => ({
  data: await listToolAccounts(deps, principal),
});

export const clearToolAccount: RouteFn = async (deps, { principal, params }) => ({
  data: await setToolAccountState(deps, principal, params.tool ?? "", params.account ?? "", "available"),
});

export const disableToolAccount: RouteFn = async (deps, { principal, params }) => ({
  data: await setToolAccountState(deps, principal, params.tool ?? "", params.account ?? "", "disabled"),
});
