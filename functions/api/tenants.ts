import { addKeySchema, createTenantSchema } from "../../core/schemas.ts";
import {
  addTenantKey,
  createTenant,
  listTenantKeys,
  listTenants,
  revokeTenantKey,
} from "../../core/tenants.ts";
import { lambdaDeps } from "../_shared/composition.ts";
import { apiHandler, authLookups, parse, type RouteMap } from "../_shared/http.ts";

export const routes: RouteMap = {
  "POST /v2/tenants": async (deps, { principal, body }) => ({
    status: 201,
    data: await createTenant(deps, principal, parse(createTenantSchema, body ?? {})),
  }),
  "GET /v2/tenants": async (deps, { principal }) => ({ data: await listTenants(deps, principal) }),
  "POST /v2/tenants/{id}/keys": async (deps, { principal, params, body }) => ({
    status: 201,
    data: await addTenantKey(deps, principal, params.id ?? "", parse(addKeySchema, body ?? {}).scopes),
  }),
  "GET /v2/tenants/{id}/keys": async (deps, { principal, params }) => ({
    data: await listTenantKeys(deps, principal, params.id ?? ""),
  }),
  "DELETE /v2/tenants/{id}/keys/{key_id}": async (deps, { principal, params }) => {
    const revoked = await revokeTenantKey(deps, principal, params.id ?? "", params.key_id ?? "");
    // At once in this container; other containers' caches let the key go within AUTH_CACHE_SECONDS.
    await authLookups(deps).forgetTenant(params.id ?? "");
    return { data: revoked };
  },
};

export const handler = apiHandler(routes, lambdaDeps);
