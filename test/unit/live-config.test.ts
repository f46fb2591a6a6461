import { describe, expect, it } from "vitest";
import { configChanges, refreshConfig, reloadConfig } from "../../core/live-config.ts";
import { parseSchedulerConfig } from "../../runtime/scheduler-config.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const CONFIG = `
pools:
  - { name: main, tool: claude, account: main, max_concurrency: 3 }
  - { name: cx, tool: codex, account: main, max_concurrency: 1 }
`;
const lowered = CONFIG.replace("max_concurrency: 3", "max_concurrency: 1");

describe("config changes", () => {
  it("tell runtime fields from infrastructure, path by path", () => {
    const from = parseSchedulerConfig(CONFIG);
    const to = parseSchedulerConfig(
      `concurrency_limits: { "tool:claude": 2 }\n${CONFIG.replace("max_concurrency: 3", "max_concurrency: 1, retry: { base_seconds: 5 }, worker: { max: 2 }")}`,
    );
    expect(configChanges(from, to)).toEqual({
      runtime: [
        "concurrency_limits.tool:claude: (none) → 2",
        "pools.main.max_concurrency: 3 → 1",
        "pools.main.retry.base_seconds: 30 → 5",
      ],
      infrastructure: ["pools.main.worker.max: 1 → 2"],
    });
    const renamed = parseSchedulerConfig(CONFIG.replace("name: cx", "name: cy"));
    expect(configChanges(from, renamed).infrastructure).toEqual([
      "pool cy is new: its queue and workers do not exist",
      "pool cx is removed: its queue and workers remain",
    ]);
    expect(configChanges(from, parseSchedulerConfig(CONFIG))).toEqual({ runtime: [], infrastructure: [] });
  });
});

describe("a reload", () => {
  it("applies runtime fields at once here, and to another process when it looks", async () => {
    const { deps, source, clock } = memoryDeps(CONFIG);
    // Another process of the same deployment, on the same table.
    const other = { ...deps, config: parseSchedulerConfig(CONFIG) };
    await refreshConfig(other);
    source.text = lowered;
    expect(await reloadConfig(deps, ADMIN)).toEqual({
      changes: ["pools.main.max_concurrency: 3 → 1"],
      warnings: [],
    });
    expect(deps.config.pools[0]?.max_concurrency).toBe(1);
    // It looks at most every 30 s.
    await refreshConfig(other);
    expect(other.config.pools[0]?.max_concurrency).toBe(3);
    clock.advance(30_000);
    await refreshConfig(other);
    expect(other.config.pools[0]?.max_concurrency).toBe(1);
    // Reloading what is applied changes nothing.
    expect((await reloadConfig(deps, ADMIN)).changes).toEqual([]);
  });

  it("refuses an invalid config or one that needs a deploy, naming why, and applies nothing", async () => {
    const { deps, source } = memoryDeps(CONFIG);
    source.text = CONFIG.replace("max_concurrency: 3", "max_concurrency: -1");
    await expect(reloadConfig(deps, ADMIN)).rejects.toMatchObject({
      code: "1001",
      message: "scheduler.config.yaml: pools.0.max_concurrency: Too small: expected number to be >=1",
    });
    source.text = `${CONFIG}  - { name: extra, tool: gemini, account: main, max_concurrency: 1 }\n`;
    await expect(reloadConfig(deps, ADMIN)).rejects.toMatchObject({
      code: "1007",
      message: "config: needs deploy: pool extra is new: its queue and workers do not exist",
    });
    expect(await deps.configs.appliedConfig()).toBeUndefined();
    expect(deps.config.pools.map((p) => p.name)).toEqual(["main", "cx"]);
    await expect(
      reloadConfig(deps, { kind: "tenant", tenantId: "t", keyId: "k", scopes: ["tasks:read"] }),
    ).rejects.toMatchObject({
      code: "1009",
    });
  });

  it("is voided by a deploy of another config: the deployed file wins", async () => {
    const { deps, source } = memoryDeps(CONFIG);
    source.text = lowered;
    await reloadConfig(deps, ADMIN);
    // A process deployed with another file, on the same table.
    const redeployed = {
      ...deps,
      config: parseSchedulerConfig(CONFIG.replace("max_concurrency: 1", "max_concurrency: 2")),
    };
    await refreshConfig(redeployed);
    expect(redeployed.config.pools.map((p) => p.max_concurrency)).toEqual([3, 2]);
  });

  it("warns of a pool that admits more than its workers hold", async () => {
    const { deps, source } = memoryDeps(CONFIG);
    source.text = CONFIG.replace("max_concurrency: 3 }", "max_concurrency: 3, policy: { max_priority: 7 } }");
    const outcome = await reloadConfig(deps, ADMIN);
    expect(outcome.changes).toEqual(["pools.main.policy.max_priority: (none) → 7"]);
    expect(outcome.warnings).toEqual([
      "pool main: max_concurrency 3 exceeds what its workers hold (worker.max 1 × worker.slots 1 = 1)",
    ]);
  });
});
