import { describe, expect, it, vi } from "vitest";
import { MemoryStore } from "../../adapters/memory/memory-store.ts";
import { CachedAuthLookups } from "../../core/auth.ts";
import type { ApiKeyRecord, Tenant } from "../../core/records.ts";
import { TtlCache } from "../../core/ttl-cache.ts";
import { manualClock } from "../support/memory-deps.ts";

describe("TtlCache", () => {
  const setup = (ttlMs = 1000, max?: number) => {
    const clock = manualClock();
    const cache = new TtlCache<string, string>(() => clock.now().getTime(), ttlMs, max);
    return { clock, cache };
  };

  it("serves a found value until its time is up, then loads again", async () => {
    const { clock, cache } = setup();
    const load = vi.fn(async () => "v1");
    expect(await cache.get("k", load)).toBe("v1");
    clock.advance(999);
    expect(await cache.get("k", load)).toBe("v1");
    expect(load).toHaveBeenCalledTimes(1);
    clock.advance(1);
    load.mockResolvedValueOnce("v2");
    expect(await cache.get("k", load)).toBe("v2");
    expect(load).toHaveBeenCalledTimes(2);
  });

  it("shares one load among concurrent callers", async () => {
    const { cache } = setup();
    const load = vi.fn(async () => "v");
    expect(await Promise.all([cache.get("k", load), cache.get("k", load)])).toEqual(["v", "v"]);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it("never keeps a miss or a failure", async () => {
    const { cache } = setup();
    expect(await cache.get("k", async () => undefined)).toBeUndefined();
    expect(await cache.get("k", async () => "now found")).toBe("now found");
    await expect(cache.get("e", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await cache.get("e", async () => "recovered")).toBe("recovered");
  });

  it("drops the oldest entries past its size", async () => {
    const { cache } = setup(1000, 2);
    for (const key of ["a", "b", "c"]) await cache.get(key, async () => key);
    expect(cache.size).toBe(2);
    const load = vi.fn(async () => "a again");
    expect(await cache.get("a", load)).toBe("a again");
    expect(load).toHaveBeenCalledOnce();
  });

  it("forgets the entries a predicate picks", async () => {
    const { cache } = setup();
    await cache.get("a", async () => "keep");
    await cache.get("b", async () => "drop");
    await cache.forget((value) => value === "drop");
    expect(await cache.get("a", async () => "reloaded")).toBe("keep");
    expect(await cache.get("b", async () => "reloaded")).toBe("reloaded");
  });
});

describe("CachedAuthLookups", () => {
  const tenant: Tenant = {
    id: "t_1",
    name: "acme",
    rate_limit_per_minute: 5,
    create_time: "2026-01-01T00:00:00Z",
  };
  const key: ApiKeyRecord = {
    key_id: "key_1",
    tenant_id: "t_1",
    key_hash: "h1",
    scopes: ["tasks:read"],
    create_time: "2026-01-01T00:00:00Z",
  };

  it("sees a revocation made elsewhere within AUTH_CACHE_SECONDS, and at once after forgetTenant", async () => {
    const clock = manualClock();
    const store = new MemoryStore();
    await store.createTenant(tenant, key);
    const lookups = new CachedAuthLookups(store, clock);
    const reads = vi.spyOn(store, "findApiKey");

    expect(await lookups.findApiKey("h1")).toEqual(key);
    await store.revokeApiKey("t_1", "key_1", "2026-01-01T00:00:10Z");
    clock.advance(59_999);
    expect(((await lookups.findApiKey("h1")) as ApiKeyRecord | undefined)?.revoked_time).toBeUndefined();
    expect(reads).toHaveBeenCalledTimes(1);
    clock.advance(1);
    expect(((await lookups.findApiKey("h1")) as ApiKeyRecord | undefined)?.revoked_time).toBe(
      "2026-01-01T00:00:10Z",
    );

    const fresh = new CachedAuthLookups(store, clock);
    await store.putApiKey({ ...key, key_id: "key_2", key_hash: "h2" });
    expect(await fresh.findApiKey("h2")).toBeDefined();
    expect(await fresh.getTenant("t_1")).toEqual(tenant);
    await store.revokeApiKey("t_1", "key_2", "2026-01-01T00:01:00Z");
    await fresh.forgetTenant("t_1");
    expect(((await fresh.findApiKey("h2")) as ApiKeyRecord | undefined)?.revoked_time).toBe(
      "2026-01-01T00:01:00Z",
    );
  });

  it("does not cache unknown keys, so a new key works at once", async () => {
    const store = new MemoryStore();
    const lookups = new CachedAuthLookups(store, manualClock());
    expect(await lookups.findApiKey("h1")).toBeUndefined();
    await store.createTenant(tenant, key);
    expect(await lookups.findApiKey("h1")).toEqual(key);
  });
});
