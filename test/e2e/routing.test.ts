/** A tool-only task goes where it should start soonest, as the pools' recent runs tell: over HTTP, real workers. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const CONFIG = `pools:
  - { name: slow, tool: claude, account: a, max_concurrency: 1 }
  - { name: fast, tool: claude, account: b, max_concurrency: 2, worker: { slots: 2 } }
`;

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workerEnv: { PATH: FAKE_CLI_PATH } });
});
afterAll(async () => {
  await stack?.stop();
});

const submit = async (body: object) =>
  (await stack.call("POST", "/v2/tasks", { body })).json?.data.uuid as string;
const statusOf = async (uuid: string) => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data;
const until = (uuid: string, status: string) =>
  waitFor(
    () => statusOf(uuid),
    (t) => t?.status === status,
    60_000,
  );

describe("a tool-only task", () => {
  it("goes to the pool with the shorter expected wait, though it holds more slots", async () => {
    // History: slow's runs take over two seconds, fast's a moment. Eight each, so that they fill at least
    // the five sample slots an estimate needs (two runs may land in one slot).
    for (let i = 0; i < 8; i++) {
      await until(await submit({ pool: "slow", prompt: "[sleep:2] history" }), "succeeded");
    }
    await Promise.all(
      Array.from({ length: 8 }, async () =>
        until(await submit({ pool: "fast", prompt: "history" }), "succeeded"),
      ),
    );
    // Both pools full: fast holds two slots, then slow one. Slow's run starts last, so that however slow
    // the machine, it is still within its pools' usual run time when the waits are read: fast's are past
    // theirs.
    const fastHeld = [
      await submit({ pool: "fast", prompt: "[sleep:8] holds fast" }),
      await submit({ pool: "fast", prompt: "[sleep:8] holds fast too" }),
    ];
    for (const uuid of fastHeld) await until(uuid, "running");
    await until(await submit({ pool: "slow", prompt: "[sleep:8] holds slow" }), "running");
    const pools = (await stack.call("GET", "/v2/pools")).json?.data;
    expect(
      pools.map((p: { name: string; tasks: number; usage: number }) => [p.name, p.tasks, p.usage]),
    ).toEqual([
      ["slow", 1, 1],
      ["fast", 2, 1],
    ]);
    const queues = (await stack.call("GET", "/v2/queues")).json?.data;
    const [slow, fast] = queues.map((q: { waiting_time_expect: number }) => q.waiting_time_expect);
    expect(fast, JSON.stringify(queues)).toBeLessThan(slow);

    const res = await stack.call("POST", "/v2/tasks", { body: { tool: "claude", prompt: "where do I go?" } });
    const answer = res.json?.data;
    expect(await statusOf(answer.uuid)).toMatchObject({ pool: "fast", status: "queued", position: 1 });
    // Its creation records the choice, and the wait it was told to expect.
    const events = (await stack.call("GET", `/v2/tasks/${answer.uuid}/events`)).json?.data.events;
    expect(events[0]).toMatchObject({
      type: "task.created",
      pool: "fast",
      routed_by: "expected_wait",
      predicted_wait: { expect: answer.waiting_time_expect, error: answer.waiting_time_error },
    });
    expect(answer.waiting_time_expect).toBeGreaterThan(0);
  });
});
