/** GET /v2/status on the local stack: every part, and a dead letter seen as what is wrong. */
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ringSlot } from "../../core/estimate.ts";
import { runIdFor } from "../../core/identifiers.ts";
import { WAIT_OUTCOME_SLOTS } from "../../core/ports.ts";
import { dlqName } from "../../local/resources.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

// `tight` promises what one slot cannot keep for three tasks at once.
const CONFIG = `pools:
  - { name: main, tool: claude, account: main, max_concurrency: 1, sla: { max_wait_seconds: 60 } }
  - { name: tight, tool: codex, account: main, max_concurrency: 1, sla: { max_wait_seconds: 0.5, percentile: 99 } }
`;

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
});
afterAll(async () => {
  await stack?.stop();
});

const status = async () => (await stack.call("GET", "/v2/status")).json?.data;
const componentsOf = (report: { components: { name: string; status: string; detail: string }[] }) =>
  Object.fromEntries(report.components.map((c) => [c.name, c.status]));

describe("GET /v2/slas", () => {
  it("measures each pool's recent waits at its SLA's percentile, met or missed", async () => {
    const uuids = await Promise.all(
      [1, 2, 3].map((n) => stack.submit({ pool: "tight", prompt: `[sleep:1] tight ${n}` })),
    );
    await waitFor(
      () =>
        Promise.all(
          uuids.map(async (uuid) => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data.status),
        ),
      (statuses) => statuses.every((s) => s === "succeeded"),
      30_000,
    );
    const waits = await Promise.all(
      uuids.map(async (uuid) => {
        const task = (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data;
        return (Date.parse(task.start_time) - Date.parse(task.create_time)) / 1000;
      }),
    );
    // A wait takes a slot its run id picks; of two in one slot, the later run's (the longer wait) stays.
    const bySlot = new Map<number, number>();
    uuids.forEach((uuid, i) => {
      const slot = ringSlot(runIdFor(uuid, 1), WAIT_OUTCOME_SLOTS);
      bySlot.set(slot, Math.max(bySlot.get(slot) ?? 0, waits[i] as number));
    });
    const kept = [...bySlot.values()];
    const slas = (await stack.call("GET", "/v2/slas")).json?.data;
    const tight = slas.find((s: { pool: string }) => s.pool === "tight");
    expect(tight).toEqual({
      pool: "tight",
      sla: { max_wait_seconds: 0.5, percentile: 99 },
      measured_wait_s: expect.any(Number),
      samples: kept.length,
      met: false,
    });
    // The longest of those kept, as stored (to the tenth of a second).
    expect(Math.abs(tight.measured_wait_s - Math.max(...kept))).toBeLessThanOrEqual(0.06);
    expect(slas.find((s: { pool: string }) => s.pool === "main")).toMatchObject({
      sla: { max_wait_seconds: 60, percentile: 90 },
    });
  });
});

describe("GET /v2/status", () => {
  it("shows every part well on a working stack", async () => {
    const uuid = await stack.submit({ pool: "main", prompt: "status check" });
    await waitFor(
      async () => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data.status,
      (s) => s === "succeeded",
    );
    const report = await waitFor(
      status,
      (r) =>
        r.status === "ok" &&
        r.components.some(
          (c: { name: string; detail: string }) =>
            c.name === "events-relay" && c.detail.startsWith("its last batch"),
        ),
    );
    expect(componentsOf(report)).toEqual({
      table: "ok",
      "queue:main": "ok",
      "queue:tight": "ok",
      "workers:main": "ok",
      "workers:tight": "ok",
      tick: "ok",
      "events-relay": "ok",
    });
    expect(report.components.find((c: { name: string }) => c.name === "workers:main").detail).toMatch(
      /^1 live, /,
    );
  });

  it("reports a dead-letter message as what is wrong with its pool's queue", async () => {
    await stack.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.resources.queueUrls.main?.replace(/[^/]+$/, (name) => dlqName(name)),
        MessageBody: JSON.stringify({ run_id: "x", task_uuid: "y", pool: "main" }),
        MessageGroupId: "g",
        MessageDeduplicationId: "poison-1",
      }),
    );
    const report = await waitFor(status, (r) => r.status === "degraded");
    expect(report.status).toBe("degraded");
    const queue = report.components.find((c: { name: string }) => c.name === "queue:main");
    expect(queue).toEqual({
      name: "queue:main",
      status: "degraded",
      detail: expect.stringMatching(
        /^1 dead letter \(dispatches no worker could take\), the oldest first sent \d+ s ago$/,
      ),
    });
    expect(componentsOf(report)).toMatchObject({ table: "ok", tick: "ok" });
  });

  it("is the admin's alone", async () => {
    const { api_key } = (await stack.call("POST", "/v2/tenants", { body: { name: "t" } })).json?.data ?? {};
    const res = await stack.call("GET", "/v2/status", { key: api_key });
    expect([res.status, res.json?.code]).toEqual([403, "1009"]);
  });
});
