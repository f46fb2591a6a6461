import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Deps } from "./deps.ts";
import { ForbiddenError, UnauthorizedError } from "./errors.ts";
import type { Scope } from "./schemas.ts";

/** The tenant that admin-submitted tasks belong to unless the admin names another. */
export const DEFAULT_TENANT = "default";
export const TENANT_KEY_SCOPES: Scope[] = ["tasks:read", "tasks:write"];

export type Principal =
  | { kind: "anonymous"; scopes: readonly Scope[] }
  | { kind: "admin"; scopes: readonly Scope[] }
  | { kind: "tenant"; tenantId: string; keyId: string; scopes: readonly Scope[] };

export const hashApiKey = (key: string) => createHash("sha256").update(key).digest("hex");

/** A new API key: 256 random bits, shown once, stored only as its hash. */
export function newApiKey(): { apiKey: string; keyId: string; keyHash: string } {
  const apiKey = `sy_${randomBytes(32).toString("base64url")}`;
  return { apiKey, keyId: `key_${randomBytes(8).toString("hex")}`, keyHash: hashApiKey(apiKey) };
}

/** Constant-time comparison of two secrets (compares their hashes, so lengths never leak). */
const sameSecret = (a: string, b: string) =>
  timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());

/** Resolves the caller from an API key; a missing, unknown or revoked key is a 401. */
export async function authenticate(deps: Pick<Deps, "store" | "adminKey">, apiKey: string | undefined) {
  if (!apiKey) throw new UnauthorizedError();
  if (deps.adminKey && sameSecret(apiKey, deps.adminKey)) {
    return { kind: "admin", scopes: ["admin", "tasks:read", "tasks:write"] } satisfies Principal;
  }
  const record = await deps.store.findApiKey(hashApiKey(apiKey));
  if (!record || record.revoked_time) throw new UnauthorizedError();
  return {
    kind: "tenant",
    tenantId: record.tenant_id,
    keyId: record.key_id,
    scopes: record.scopes,
  } satisfies Principal;
}

export function requireScope(principal: Principal, scope: Scope): void {
  if (!principal.scopes.includes(scope)) throw new ForbiddenError(`this key lacks the ${scope} scope`);
}

/** The tenant a principal acts in: its own, or for the admin the one asked for (default: DEFAULT_TENANT). */
export function actingTenant(principal: Principal, requested?: string): string {
  if (principal.kind === "anonymous") throw new UnauthorizedError();
  if (principal.kind === "tenant") return principal.tenantId;
  return requested ?? DEFAULT_TENANT;
}

/** The caller of a public route. */
export const ANONYMOUS: Principal = { kind: "anonymous", scopes: [] };

/** Whether the principal may see records of `tenant`. Callers answer 404, never 403, so ids don't leak. */
export const canSee = (principal: Principal, tenant: string) =>
  principal.kind === "admin" || (principal.kind === "tenant" && principal.tenantId === tenant);
