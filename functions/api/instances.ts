import { z } from "zod";
import { readRunLog } from "../../core/artifacts.ts";
import { getRun, listRuns, mergeRunTags } from "../../core/runs.ts";
import { LIMITS, mergeTagsSchema } from "../../core/schemas.ts";
import { RUN_STATUSES } from "../../core/status.ts";
import { runView } from "../../core/views.ts";
import { lambdaDeps } from "../_shared/composition.ts";
import { apiHandler, parse, type RouteMap } from "../_shared/http.ts";

const listQuery = z.strictObject({
  task_id: z.uuid().optional(),
  status: z.enum(RUN_STATUSES).optional(),
  size: z.coerce.number().int().min(1).max(LIMITS.pageSize).default(20),
  cursor: z.string().max(2048).optional(),
  tenant: z.string().max(LIMITS.labelLength).optional(),
});

export const routes: RouteMap = {
  "GET /v2/instances": async (deps, { principal, query }) => {
    const page = await listRuns(deps, principal, parse(listQuery, query));
    return { data: { ...page, instances: page.instances.map(runView) } };
  },
  "GET /v2/instances/{run_id}": async (deps, { principal, params }) => ({
    data: runView(await getRun(deps, principal, params.run_id ?? "")),
  }),
  "GET /v2/instances/{run_id}/status": async (deps, { principal, params }) => ({
    data: { status: (await getRun(deps, principal, params.run_id ?? "")).status },
  }),
  "GET /v2/instances/{run_id}/logs": async (deps, { principal, params }) => ({
    raw: await readRunLog(deps, principal, params.run_id ?? ""),
    contentType: "text/plain; charset=utf-8",
  }),
  "POST /v2/instances/{run_id}/tags": async (deps, { principal, params, body }) => {
    const run = await mergeRunTags(
      deps,
      principal,
      params.run_id ?? "",
      parse(mergeTagsSchema, body ?? {}).tags,
    );
    return { data: { run_id: run.run_id, tags: run.tags } };
  },
};

export const handler = apiHandler(routes, lambdaDeps);
