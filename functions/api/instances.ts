import type * as z from "zod";
import { readRunLog } from "../../core/artifacts.ts";
import type { listRunsQuery, mergeTagsSchema } from "../../core/requests.ts";
import { getRun, listRuns, mergeRunTags } from "../../core/runs.ts";
import { runView } from "../../core/views.ts";
import { RAW_CONTENT_TYPES, type RouteFn } from "../_shared/http.ts";

export const list: RouteFn<unknown, z.output<typeof listRunsQuery>> = async (deps, { principal, query }) => {
  const page = await listRuns(deps, principal, query);
  return { data: { ...page, instances: page.instances.map(runView) } };
};

export const get: RouteFn = async (deps, { principal, params }) => ({
  data: runView(await getRun(deps, principal, params.run_id ?? "")),
});

export const status: RouteFn = async (deps, { principal, params }) => ({
  data: { status: (await getRun(deps, principal, params.run_id ?? "")).status },
});

export const log: RouteFn = async (deps, { principal, params }) => ({
  raw: await readRunLog(deps, principal, params.run_id ?? ""),
  contentType: RAW_CONTENT_TYPES.text,
});

export const mergeTags: RouteFn<z.output<typeof mergeTagsSchema>> = async (
  deps,
  { principal, params, body },
) => {
  const run = await mergeRunTags(deps, principal, params.run_id ?? "", body.tags);
  return { data: { run_id: run.run_id, tags: run.tags } };
};
