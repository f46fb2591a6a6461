/** Pool policies: what a pool accepts of a submission, where a tool-only task may go, and capacity warnings. */
import { describe, expect, it } from "vitest";
import { capacityWarnings, type PoolConfig } from "../../core/config.ts";
import { ValidationError } from "../../core/errors.ts";
import { policyRefusal } from "../../core/policies.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { submitTask } from "../../core/tasks.ts";
import { parseSchedulerConfig } from "../../runtime/scheduler-config.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const CONFIG = `
pools:
  - name: open
    tool: claude
    account: a
    max_concurrency: 1
  - name: ml-only
    tool: claude
    account: b
    max_concurrency: 4
    policy: { namespaces: [ml], tags: { team: [ml, infra] }, max_timeout: 600, max_priority: 5, max_prompt_bytes: 10 }
`;
const pools = parseSchedulerConfig(CONFIG).pools;
const guarded = pools[1] as PoolConfig;
const fits = { namespace: "ml", tags: { team: "ml" }, timeout: 600, priority: 5, prompt: "0123456789" };

describe("a pool policy", () => {
  it("accepts what it allows, and nothing is asked of a pool without one", () => {
    expect(policyRefusal(guarded, fits)).toBeUndefined();
    expect(policyRefusal(guarded, { ...fits, tags: { team: "infra", other: "x" } })).toBeUndefined();
    expect(policyRefusal(pools[0] as PoolConfig, { ...fits, namespace: "web", priority: 9 })).toBeUndefined();
  });

  it("refuses each field it limits, naming the field and the pool", () => {
    for (const [change, field] of [
      [{ namespace: "web" }, "namespace"],
      [{ tags: { team: "web" } }, "tags.team"],
      [{ tags: {} }, "tags.team"],
      [{ timeout: 601 }, "timeout"],
      [{ priority: 6 }, "priority"],
      [{ prompt: "é".repeat(6) }, "prompt"],
    ] as const) {
      const refusal = policyRefusal(guarded, { ...fits, ...change });
      expect(refusal).toBeInstanceOf(ValidationError);
      expect([refusal?.field, refusal?.message.startsWith(`${field}: pool ml-only accepts`)]).toEqual([
        field,
        true,
      ]);
    }
  });

  it("is checked where a config is read: a bad one names its path", () => {
    const bad = CONFIG.replace("max_priority: 5", "max_priority: 12");
    expect(() => parseSchedulerConfig(bad)).toThrow(/pools\.1\.policy\.max_priority/);
  });
});

describe("a task that names only a tool", () => {
  const submit = (deps: ReturnType<typeof memoryDeps>["deps"], body: object) =>
    submitTask(deps, ADMIN, submitTaskSchema.parse({ tool: "claude", prompt: "p", ...body })).then(
      (o) => o.task,
    );

  it("goes only to pools whose policy accepts it, though another is emptier", async () => {
    const { deps } = memoryDeps(CONFIG);
    // open is full (one slot held); ml-only has four free, but refuses the default namespace.
    expect((await submit(deps, { pool: "open" })).status).toBe("dispatched");
    expect((await submit(deps, {})).pool).toBe("open");
    const fitting = { namespace: "ml", tags: { team: "ml" }, timeout: 60 };
    expect((await submit(deps, fitting)).pool).toBe("ml-only");
    // The default timeout is past its max_timeout.
    expect((await submit(deps, { ...fitting, timeout: undefined })).pool).toBe("open");
  });

  it("is refused with the first pool's reason when every pool of its tool refuses it", async () => {
    const { deps } = memoryDeps(
      CONFIG.replace("name: open\n    tool: claude", "name: open\n    tool: codex"),
    );
    await expect(submit(deps, { namespace: "web" })).rejects.toThrow(/^namespace: pool ml-only accepts/);
  });
});

describe("capacity warnings", () => {
  it("name a CLI pool that admits more tasks than its workers can run", () => {
    const config = parseSchedulerConfig(`
pools:
  - { name: wide, tool: claude, account: a, max_concurrency: 5, worker: { max: 2, slots: 2 } }
  - { name: fits, tool: codex, account: b, max_concurrency: 4, worker: { max: 2, slots: 2 } }
  - { name: pods, tool: container, max_concurrency: 50, lease_seconds: 60 }
`);
    expect(capacityWarnings(config)).toEqual([
      "pool wide: max_concurrency 5 exceeds what its workers hold (worker.max 2 × worker.slots 2 = 4)",
    ]);
  });
});
