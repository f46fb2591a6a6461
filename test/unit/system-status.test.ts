import { describe, expect, it } from "vitest";
import { heartbeat } from "../../core/heartbeats.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { systemStatus } from "../../core/system-status.ts";
import { submitTask } from "../../core/tasks.ts";
import { tick } from "../../core/tick.ts";
import { failing } from "../support/failing.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const CONFIG = `
pools:
  - { name: main, tool: claude, account: main, max_concurrency: 1 }
  - { name: pods, tool: container, max_concurrency: 1, lease_seconds: 60 }
`;

const byName = (report: Awaited<ReturnType<typeof systemStatus>>) =>
  Object.fromEntries(report.components.map((c) => [c.name, [c.status, c.detail]]));

describe("the system status", () => {
  it("is ok once the tick has reported, and names each part", async () => {
    const { deps } = memoryDeps(CONFIG);
    expect(byName(await systemStatus(deps, ADMIN)).tick).toEqual(["degraded", "has not reported a run yet"]);
    await tick(deps);
    const report = await systemStatus(deps, ADMIN);
    expect(report.status).toBe("ok");
    expect(byName(report)).toEqual({
      table: ["ok", "answers"],
      "queue:main": ["ok", "no dead letters"],
      "queue:pods": ["ok", "no dead letters"],
      "workers:main": ["ok", "0 live, 0 of 0 slots running, 0 queued"],
      tick: [
        "ok",
        expect.stringMatching(
          /^last reported a run 0 s ago \(it reports at most every 30 s\), which took \d+ ms$/,
        ),
      ],
      "events-relay": ["ok", "has relayed no event yet"],
    });
  });

  it("says what is wrong: dead letters, a late tick, a lagging relay, tasks no worker takes", async () => {
    const { deps, clock } = memoryDeps(CONFIG);
    await tick(deps);
    await heartbeat(deps, "events-relay", { lag_seconds: 95, published: 3 });
    deps.queue.deadLetters = async (pool) =>
      pool === "main" ? { count: 2, oldestAgeSeconds: 40 } : { count: 0 };
    await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "main", prompt: "holds the slot" }));
    await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "main", prompt: "waits" }));
    clock.advance(200_000);
    const report = await systemStatus(deps, ADMIN);
    expect(report.status).toBe("degraded");
    expect(byName(report)).toMatchObject({
      "queue:main": [
        "degraded",
        "2 dead letters (dispatches no worker could take), the oldest first sent 40 s ago",
      ],
      "queue:pods": ["ok", "no dead letters"],
      "workers:main": ["degraded", "0 live, 0 of 0 slots running, 1 queued"],
      tick: ["degraded", expect.stringMatching(/^last reported a run 200 s ago/)],
      "events-relay": ["degraded", "its last batch (200 s ago) published events 95 s after they happened"],
    });
  });

  it("is down while the table is, and a queue that cannot be read is named", async () => {
    const { deps } = memoryDeps(CONFIG);
    failing(deps.heartbeats, "heartbeats", 1);
    deps.queue.deadLetters = async () => {
      throw new Error("AccessDenied");
    };
    const report = await systemStatus(deps, ADMIN);
    expect(report.status).toBe("down");
    expect(byName(report)).toMatchObject({
      table: ["down", expect.stringContaining("could not be read: ThrottlingException")],
      "queue:main": ["down", "could not be read: Error: AccessDenied"],
    });
  });

  it("is the admin's alone", async () => {
    const { deps } = memoryDeps(CONFIG);
    await expect(
      systemStatus(deps, {
        kind: "tenant",
        tenantId: "t",
        keyId: "k",
        scopes: ["tasks:read", "tasks:write"],
      }),
    ).rejects.toMatchObject({ code: "1009" });
  });
});
