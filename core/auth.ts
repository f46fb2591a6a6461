import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { ForbiddenError, UnauthorizedError } from "./errors.ts";
import { ADMIN_SCOPES, type Scope, TENANT_DEFAULTS } from "./fields.ts";
import type { Clock, TenantStore } from "./ports.ts";
import type { ApiKeyRecord, Tenant, WorkerKeyRecord } from "./records.ts";
import { TtlCache } from "./ttl-cache.ts";

/** The tenant that admin-submitted tasks belong to unless the admin names another. */
export const DEFAULT_TENANT = "default";

/** A tenant's limits (core/limits.ts enforces them). */
export interface TenantLimits {
  rate_limit_per_minute: number;
  max_queued_tasks: number;
  max_submissions_per_minute: number;
}

export type Principal =
  | { kind: "anonymous"; scopes: readonly Scope[] }
  | { kind: "admin"; scopes: readonly Scope[] }
  /** A self-hosted worker: it pulls its pool's work (the `worker` scope) and can do nothing else. */
  | { kind: "worker"; workerId: string; pool: string; keyId: string; scopes: readonly Scope[] }
  | {
      kind: "tenant";
      tenantId: string;
      keyId: string;
      scopes: readonly Scope[];
      /** Absent: TENANT_DEFAULTS. */
      limits?: TenantLimits;
    };

/** The limits of a tenant record; TENANT_DEFAULTS for what it does not set. */
export const limitsOf = (tenant: Partial<Tenant> | undefined): TenantLimits => ({
  rate_limit_per_minute: tenant?.rate_limit_per_minute ?? TENANT_DEFAULTS.rate_limit_per_minute,
  max_queued_tasks: tenant?.max_queued_tasks ?? TENANT_DEFAULTS.max_queued_tasks,
  max_submissions_per_minute:
    tenant?.max_submissions_per_minute ?? TENANT_DEFAULTS.max_submissions_per_minute,
});

/** What authentication reads: API keys by hash, and the key's tenant for its limits. */
export type AuthLookups = Pick<TenantStore, "findApiKey" | "getTenant">;

export const hashApiKey = (key: string) => createHash("sha256").update(key).digest("hex");

/** A new API key: 256 random bits, shown once, stored only as its hash. A worker's starts `syw_`. */
export function newApiKey(prefix: "sy" | "syw" = "sy"): { apiKey: string; keyId: string; keyHash: string } {
  const apiKey = `${prefix}_${randomBytes(32).toString("base64url")}`;
  return { apiKey, keyId: `key_${randomBytes(8).toString("hex")}`, keyHash: hashApiKey(apiKey) };
}

/** Constant-time comparison of two secrets (compares their hashes, so lengths never leak). */
const sameSecret = (a: string, b: string) =>
  timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());

/**
 * Resolves the caller from an API key; a missing, unknown or revoked key is a 401. A tenant key's
 * principal carries its tenant's limits. `store` may be a CachedAuthLookups (the API handlers' is).
 */
export async function authenticate(
  deps: { store: AuthLookups; adminKey: string },
  apiKey: string | undefined,
): Promise<Principal> {
  if (!apiKey) throw new UnauthorizedError();
  if (deps.adminKey && sameSecret(apiKey, deps.adminKey)) {
    return { kind: "admin", scopes: ADMIN_SCOPES };
  }
  const record = await deps.store.findApiKey(hashApiKey(apiKey));
  if (!record) throw new UnauthorizedError();
  if ("worker_id" in record) {
    const { worker_id: workerId, pool, key_id: keyId } = record;
    return { kind: "worker", workerId, pool, keyId, scopes: ["worker"] };
  }
  if (record.revoked_time) throw new UnauthorizedError();
  return {
    kind: "tenant",
    tenantId: record.tenant_id,
    keyId: record.key_id,
    scopes: record.scopes,
    limits: limitsOf(await deps.store.getTenant(record.tenant_id)),
  };
}

/** How long a container trusts an API key or tenant record it read: a revocation takes effect within this. */
export const AUTH_CACHE_SECONDS = 60;

/**
 * API-key and tenant records cached for AUTH_CACHE_SECONDS, so that an authenticated request costs no read
 * most of the time. The price is staleness: a key revoked through another container keeps working there
 * for up to AUTH_CACHE_SECONDS ("revocation takes effect within a minute"); a revocation through this one
 * drops the tenant's entries at once (forgetTenant). Unknown keys are never cached, so a new key works at
 * once and a flood of wrong keys cannot fill the cache with misses.
 */
export class CachedAuthLookups implements AuthLookups {
  readonly #keys: TtlCache<string, ApiKeyRecord | WorkerKeyRecord>;
  readonly #tenants: TtlCache<string, Tenant>;

  constructor(
    private readonly store: AuthLookups,
    clock: Clock,
    ttlSeconds = AUTH_CACHE_SECONDS,
  ) {
    const now = () => clock.now().getTime();
    this.#keys = new TtlCache(now, ttlSeconds * 1000);
    this.#tenants = new TtlCache(now, ttlSeconds * 1000);
  }

  findApiKey(keyHash: string): Promise<ApiKeyRecord | WorkerKeyRecord | undefined> {
    return this.#keys.get(keyHash, () => this.store.findApiKey(keyHash));
  }

  getTenant(id: string): Promise<Tenant | undefined> {
    return this.#tenants.get(id, () => this.store.getTenant(id));
  }

  /** Drops what this container holds of a tenant (after a revocation or a change of its limits). */
  async forgetTenant(id: string): Promise<void> {
    await Promise.all([
      this.#keys.forget((key) => "tenant_id" in key && key.tenant_id === id),
      this.#tenants.forget((tenant) => tenant.id === id),
    ]);
  }
}

export function requireScope(principal: Principal, scope: Scope): void {
  if (!principal.scopes.includes(scope)) throw new ForbiddenError(`this key lacks the ${scope} scope`);
}

/** The tenant a principal acts in: its own, or for the admin the one asked for (default: DEFAULT_TENANT). */
export function actingTenant(principal: Principal, requested?: string): string {
  if (principal.kind === "anonymous") throw new UnauthorizedError();
  if (principal.kind === "worker") throw new ForbiddenError("a worker's key acts in no tenant");
  if (principal.kind === "tenant") return principal.tenantId;
  return requested ?? DEFAULT_TENANT;
}

/** The caller of a public route. */
export const ANONYMOUS: Principal = { kind: "anonymous", scopes: [] };

/** Whether the principal may see records of `tenant`. Callers answer 404, never 403, so ids don't leak. */
export const canSee = (principal: Principal, tenant: string) =>
  principal.kind === "admin" || (principal.kind === "tenant" && principal.tenantId === tenant);
