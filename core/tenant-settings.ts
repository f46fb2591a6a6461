/**
 * What admission reads of a tenant, its daily budget (core/budgets.ts) and its fair-share weight
 * (core/fair-share.ts), cached per process for 30 s: a change applies within that, at once in the process
 * that made it. A tenant without a record (the admin's default tenant) is cached too, so it costs no read.
 */
import type { Deps } from "./deps.ts";
import type { TenantBudget } from "./fields.ts";
import { TtlCache } from "./ttl-cache.ts";

const CACHE_MS = 30_000;

export interface TenantSettings {
  tenant: string;
  budget?: TenantBudget;
  weight?: number;
}

const caches = new WeakMap<object, TtlCache<string, TenantSettings>>();
function cacheOf(deps: Pick<Deps, "tenants" | "clock">) {
  const found = caches.get(deps.tenants);
  if (found) return found;
  const made = new TtlCache<string, TenantSettings>(() => deps.clock.now().getTime(), CACHE_MS);
  caches.set(deps.tenants, made);
  return made;
}

/** A tenant's budget and weight, as this process last read them. */
export async function tenantSettingsOf(deps: Pick<Deps, "tenants" | "clock">, tenant: string) {
  const read = await cacheOf(deps).get(tenant, async () => {
    const record = await deps.tenants.getTenant(tenant);
    return { tenant, budget: record?.budget, weight: record?.weight };
  });
  return read ?? { tenant };
}

/** Drops what this process holds of a tenant's settings (after an admin changed them here). */
export const forgetTenantSettings = (deps: Pick<Deps, "tenants" | "clock">, tenant: string) =>
  cacheOf(deps).forget((read) => read.tenant === tenant);
