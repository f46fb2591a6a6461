import { z } from "zod";
import { dispatcherStatus, setDispatcher, setPoolPaused } from "../../core/controls.ts";
import { LIMITS } from "../../core/schemas.ts";
import { listWorkers } from "../../core/workers.ts";
import { lambdaDeps } from "../_shared/composition.ts";
import { apiHandler, parse, type RouteMap } from "../_shared/http.ts";

const statusQuery = z.strictObject({ tenant: z.string().max(LIMITS.labelLength).optional() });

/** Admin controls: pools, the dispatcher switch, and the workers serving. */
export const routes: RouteMap = {
  "POST /v2/pools/{name}/pause": async (deps, { principal, params }) => ({
    data: await setPoolPaused(deps, principal, params.name ?? "", true),
  }),
  "POST /v2/pools/{name}/resume": async (deps, { principal, params }) => ({
    data: await setPoolPaused(deps, principal, params.name ?? "", false),
  }),
  "POST /v2/dispatcher/start": async (deps, { principal }) => ({
    data: await setDispatcher(deps, principal, true),
  }),
  "POST /v2/dispatcher/stop": async (deps, { principal }) => ({
    data: await setDispatcher(deps, principal, false),
  }),
  "GET /v2/dispatcher/status": async (deps, { principal, query }) => ({
    data: await dispatcherStatus(deps, principal, parse(statusQuery, query).tenant),
  }),
  "GET /v2/workers": async (deps, { principal }) => ({ data: await listWorkers(deps, principal) }),
};

export const handler = apiHandler(routes, lambdaDeps);
