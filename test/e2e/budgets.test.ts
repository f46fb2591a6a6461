/**
 * A tenant's daily budget over HTTP with real workers and the fake claude reporting $0.02 a run: $0.05
 * admits three runs' worth, the fourth waits with its reason, and the usage route tells the spend.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const CONFIG = `pools:
  - { name: claude-main, tool: claude, account: main, max_concurrency: 2, worker: { slots: 2 } }
`;

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
});
afterAll(async () => {
  await stack?.stop();
});

describe("a tenant's daily budget", () => {
  it("admits $0.05 worth of $0.02 runs (three), then the fourth waits with waiting_reason budget", async () => {
    const created = await stack.call("POST", "/v2/tenants", { body: { name: "budgeted" } });
    expect(created.status).toBe(201);
    const { tenant, api_key: key } = created.json?.data ?? {};
    const patched = await stack.call("PATCH", `/v2/tenants/${tenant.id}`, {
      body: { budget: { usd_per_day: 0.05 } },
    });
    expect(patched.json?.data).toMatchObject({
      id: tenant.id,
      budget: { usd_per_day: 0.05, on_exceed: "wait" },
    });
    // Only the admin sets a budget; a bad one names its field.
    expect(
      (await stack.call("PATCH", `/v2/tenants/${tenant.id}`, { key, body: { budget: null } })).status,
    ).toBe(403);
    const bad = await stack.call("PATCH", `/v2/tenants/${tenant.id}`, {
      body: { budget: { usd_per_day: -1 } },
    });
    expect([bad.status, bad.json?.code, bad.json?.message]).toEqual([
      400,
      "1001",
      expect.stringMatching(/usd_per_day/),
    ]);

    const task = async (uuid: string) => (await stack.call("GET", `/v2/tasks/${uuid}`, { key })).json?.data;
    for (let i = 0; i < 3; i++) {
      const uuid = await stack.submit({ tool: "claude", prompt: `[cost:0.02] run ${i}` }, key);
      const done = await waitFor(
        () => task(uuid),
        (t) => t?.status === "succeeded",
        30_000,
      );
      expect(done.result.cost_usd).toBe(0.02);
    }
    const fourth = await stack.submit({ tool: "claude", prompt: "[cost:0.02] run 3" }, key);
    const waiting = await waitFor(
      () => task(fourth),
      (t) => t?.waiting_reason === "budget",
      15_000,
    );
    const tomorrow = new Date(
      Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1),
    );
    expect(waiting).toMatchObject({
      status: "queued",
      waiting_reason: "budget",
      waiting_until: tomorrow.toISOString(),
    });

    const usage = (await stack.call("GET", `/v2/tenants/${tenant.id}/usage?days=1`, { key })).json?.data;
    expect(usage).toMatchObject({
      tenant: tenant.id,
      budget: { usd_per_day: 0.05 },
      days: [
        {
          usd: 0.06,
          runs: 3,
          committed_usd: 0.06,
          pools: [{ pool: "claude-main", tool: "claude", usd: 0.06, runs: 3 }],
        },
      ],
    });
    expect((await stack.call("GET", "/v2/tenants/t_00000000000000000000/usage")).status).toBe(404);
  });
});
