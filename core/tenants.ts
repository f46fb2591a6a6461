import { newApiKey, type Principal, requireScope } from "./auth.ts";
import type { Deps } from "./deps.ts";
import { ERROR_CODES, NotFoundError } from "./errors.ts";
import { type Scope, TENANT_SCOPES } from "./fields.ts";
import type { ApiKeyRecord, Tenant } from "./records.ts";
import type { CreateTenant, PatchTenant } from "./requests.ts";
import { forgetTenantSettings } from "./tenant-settings.ts";

/** Ids as createTenant and newApiKey make them; anything else cannot exist, and is never looked up. */
const TENANT_ID = /^t_[0-9a-f]{20}$/;
const KEY_ID = /^key_[0-9a-f]{16}$/;

export const tenantNotFound = (id: string) =>
  new NotFoundError(ERROR_CODES.tenantNotFound, `tenant ${id.slice(0, 64)} not found`);

function keyRecord(deps: Pick<Deps, "clock">, tenantId: string, scopes: Scope[] = [...TENANT_SCOPES]) {
  const { apiKey, keyId, keyHash } = newApiKey();
  const record: ApiKeyRecord = {
    key_id: keyId,
    tenant_id: tenantId,
    key_hash: keyHash,
    scopes,
    create_time: deps.clock.now().toISOString(),
  };
  return { apiKey, record };
}

/** Creates a tenant with its first key. The key is in the answer once and never again. */
export async function createTenant(
  deps: Pick<Deps, "tenants" | "clock" | "ids">,
  principal: Principal,
  input: CreateTenant,
) {
  requireScope(principal, "admin");
  const tenant: Tenant = {
    id: `t_${deps.ids.uuid().replaceAll("-", "").slice(0, 20)}`,
    name: input.name,
    rate_limit_per_minute: input.rate_limit_per_minute,
    max_queued_tasks: input.max_queued_tasks,
    max_submissions_per_minute: input.max_submissions_per_minute,
    create_time: deps.clock.now().toISOString(),
  };
  const { apiKey, record } = keyRecord(deps, tenant.id);
  await deps.tenants.createTenant(tenant, record);
  return { tenant, api_key: apiKey, key_id: record.key_id };
}

export async function listTenants(deps: Pick<Deps, "tenants">, principal: Principal) {
  requireScope(principal, "admin");
  return deps.tenants.listTenants();
}

async function existingTenant(deps: Pick<Deps, "tenants">, id: string): Promise<Tenant> {
  const tenant = TENANT_ID.test(id) ? await deps.tenants.getTenant(id) : undefined;
  if (!tenant) throw tenantNotFound(id);
  return tenant;
}

/**
 * Adds a key, for rotation (the old key keeps working until it is revoked) or for a narrower use: `scopes`
 * (default both) may be `tasks:read` alone, e.g. for a dashboard, or `tasks:write` alone.
 */
export async function addTenantKey(
  deps: Pick<Deps, "tenants" | "clock">,
  principal: Principal,
  tenantId: string,
  scopes: Scope[] = [...TENANT_SCOPES],
) {
  requireScope(principal, "admin");
  await existingTenant(deps, tenantId);
  const { apiKey, record } = keyRecord(deps, tenantId, scopes);
  await deps.tenants.putApiKey(record);
  return { api_key: apiKey, key_id: record.key_id, scopes: record.scopes };
}

export async function listTenantKeys(deps: Pick<Deps, "tenants">, principal: Principal, tenantId: string) {
  requireScope(principal, "admin");
  await existingTenant(deps, tenantId);
  const keys = await deps.tenants.listApiKeys(tenantId);
  return keys.map(({ key_id, scopes, create_time, revoked_time }) => ({
    key_id,
    scopes,
    create_time,
    revoked_time,
  }));
}

export async function revokeTenantKey(
  deps: Pick<Deps, "tenants" | "clock">,
  principal: Principal,
  tenantId: string,
  keyId: string,
) {
  requireScope(principal, "admin");
  const revoked =
    TENANT_ID.test(tenantId) &&
    KEY_ID.test(keyId) &&
    (await deps.tenants.revokeApiKey(tenantId, keyId, deps.clock.now().toISOString()));
  if (!revoked) {
    const what = `key ${keyId.slice(0, 64)} of tenant ${tenantId.slice(0, 64)}`;
    throw new NotFoundError(ERROR_CODES.tenantNotFound, `${what} not found`);
  }
  return { key_id: keyId, revoked: true };
}

/**
 * An admin sets a tenant's daily budget and fair-share weight (null: none); this process applies them at
 * once, others within 30 s.
 */
export async function patchTenant(
  deps: Pick<Deps, "tenants" | "clock">,
  principal: Principal,
  id: string,
  patch: PatchTenant,
): Promise<Tenant> {
  requireScope(principal, "admin");
  if (!(await deps.tenants.setTenantSettings(id, patch))) throw tenantNotFound(id);
  await forgetTenantSettings(deps, id);
  return (await deps.tenants.getTenant(id)) as Tenant;
}
