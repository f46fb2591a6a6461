import { describe, expect, it } from "vitest";
import { DEFAULT_MIX, type LoadProfile, simulate } from "../../bench/scale-model.ts";

/** A task that writes `units` to its tenant's counter at submit, and 1 to its pool's item per heartbeat. */
const profile = (units: number): LoadProfile => ({
  date: "2030-01-01T00:00:00.000Z",
  lease_seconds: 30,
  requests: [
    {
      request: "api DynamoDB UpdateItem TENANT",
      stage: "submit",
      per_task: 1,
      messages: 0,
      rcu: 0,
      write_units: { "table TENANT#<tenant>": units, "table TASK#<task>": 2 },
    },
  ],
  heartbeat: [
    {
      request: "worker DynamoDB UpdateItem POOL",
      stage: "heartbeat",
      per_task: 1,
      messages: 0,
      rcu: 0,
      write_units: { "table POOL#<pool>": 1 },
    },
  ],
});

describe("the scale simulation", () => {
  it("puts each stage's units on its keys, every second, against the partition limit", () => {
    // One tenant and one pool take everything; runs of exactly 40 s heartbeat once (lease 120 s).
    const mix = {
      ...DEFAULT_MIX,
      bigTenantShare: 1,
      bigPoolShare: 1,
      runSeconds: [40.5, 40.5] as [number, number],
    };
    const result = simulate(profile(2), 200, { mix, measureSeconds: 20, lambdaMs: 50, apiThrottleRps: 1000 });
    const hot = Object.fromEntries(result.hottest.map((h) => [h.key, h.utilization]));
    expect(hot["table TENANT#tenant-0 (writes)"]).toBe(0.4);
    expect(hot["table POOL#pool-0 (writes)"]).toBe(0.2);
    expect(result.heartbeats_per_task).toBe(1);
    expect(result.max_partition_utilization).toBe(0.4);
    // The API takes every submit: 200 of the stage's 1,000 a second.
    expect(result.resources.find((r) => r.key.startsWith("API Gateway stage"))?.utilization).toBe(0.2);
  });

  it("spreads tenants and pools by the mix: the big tenant's share of the load lands on its keys", () => {
    const result = simulate(profile(2), 1000, { measureSeconds: 10, lambdaMs: 50, apiThrottleRps: 1000 });
    const bigTenant =
      result.hottest.find((h) => h.key === "table TENANT#tenant-0 (writes)")?.utilization ?? 0;
    // Half of 1,000 tasks a second, 2 units each, against 1,000 WCU: about 1 (the draws of the mix vary).
    expect(bigTenant).toBeGreaterThan(0.9);
    expect(bigTenant).toBeLessThan(1.1);
    expect(result.hottest[0]?.key).toBe("table TENANT#tenant-0 (writes)");
  });
});
