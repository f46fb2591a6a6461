import type * as z from "zod";
import { tenantUsage } from "../../core/budgets.ts";
import type { addKeySchema, createTenantSchema, patchTenantSchema, usageQuery } from "../../core/requests.ts";
import {
  addTenantKey,
  createTenant,
  listTenantKeys,
  listTenants,
  patchTenant,
  revokeTenantKey,
} from "../../core/tenants.ts";
import { authLookups, type RouteFn } from "../_shared/http.ts";

export const create: RouteFn<z.output<typeof createTenantSchema>> = async (deps, { principal, body }) => ({
  status: 201,
  data: await createTenant(deps, principal, body),
});

export const list: RouteFn = async (deps, { principal }) => ({ data: await listTenants(deps, principal) });

export const addKey: RouteFn<z.output<typeof addKeySchema>> = async (deps, { principal, params, body }) => ({
  status: 201,
  data: await addTenantKey(deps, principal, params.id ?? "", body.scopes),
});

export const listKeys: RouteFn = async (deps, { principal, params }) => ({
  data: await listTenantKeys(deps, principal, params.id ?? ""),
});

export const revokeKey: RouteFn = async (deps, { principal, params }) => {
  const revoked = await revokeTenantKey(deps, principal, params.id ?? "", params.key_id ?? "");
  // At once in this container; other containers' caches let the key go within AUTH_CACHE_SECONDS.
  await authLookups(deps).forgetTenant(params.id ?? "");
  return { data: revoked };
};

export const patch: RouteFn<z.output<typeof patchTenantSchema>> = async (
  deps,
  { principal, params, body },
) => ({
  data: await patchTenant(deps, principal, params.id ?? "", body),
});

export const usage: RouteFn<unknown, z.output<typeof usageQuery>> = async (
  deps,
  { principal, params, query },
) => ({
  data: await tenantUsage(deps, principal, params.id ?? "", query.days),
});
