import type * as z from "zod";
import type { templateQuery, verboseQuery } from "../../core/requests.ts";
import {
  createTemplate,
  getTemplate,
  listTemplates,
  type renderBody,
  renderTemplate,
  type templateBody,
  updateTemplate,
} from "../../core/templates.ts";
import type { RouteFn } from "../_shared/http.ts";

export const create: RouteFn<z.output<typeof templateBody>> = async (deps, { principal, body }) => ({
  status: 201,
  data: await createTemplate(deps, principal, body),
});

export const update: RouteFn<z.output<typeof templateBody>> = async (deps, { principal, params, body }) => ({
  data: await updateTemplate(deps, principal, params.name ?? "", body),
});

export const list: RouteFn<unknown, z.output<typeof verboseQuery>> = async (deps, { principal, query }) => ({
  data: await listTemplates(deps, principal, query.verbose),
});

export const get: RouteFn<unknown, z.output<typeof templateQuery>> = async (
  deps,
  { principal, params, query },
) => ({
  data: await getTemplate(deps, principal, params.name ?? "", query.revision),
});

export const render: RouteFn<z.output<typeof renderBody>> = async (deps, { principal, params, body }) => ({
  data: await renderTemplate(deps, principal, params.name ?? "", body),
});
