/** Priority aging: an old low-priority task overtakes fresher higher-priority ones at the documented time. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

const AGING_SECONDS = 1;
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack(
    `pools:\n  - { name: one, tool: claude, account: main, max_concurrency: 1, aging_seconds: ${AGING_SECONDS} }\n`,
    { workerEnv: { PATH: FAKE_CLI_PATH } },
  );
});
afterAll(async () => {
  await stack?.stop();
});

const taskOf = async (uuid: string) => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data;

describe("priority aging", () => {
  it("lets a priority-1 task pass priority-5 tasks that came more than 4 × aging_seconds after it", async () => {
    const blocker = await stack.submit({ pool: "one", prompt: "[sleep:8] blocker" });
    await waitFor(
      async () => (await taskOf(blocker)).status,
      (s) => s === "running",
    );
    const low = await stack.submit({ pool: "one", prompt: "low", priority: 1 });
    const early = await stack.submit({ pool: "one", prompt: "early", priority: 5 });
    // Ready within 4 steps of the low one: the priority-5 task goes first.
    expect([(await taskOf(early)).position, (await taskOf(low)).position]).toEqual([1, 2]);
    const lowReady = Date.parse((await taskOf(low)).create_time);
    const passAt = lowReady + (5 - 1) * AGING_SECONDS * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, passAt - Date.now() + 300)));
    const late = await stack.submit({ pool: "one", prompt: "late", priority: 5 });
    // Ready past those 4 steps: the low one has aged past it.
    const places = await Promise.all([early, low, late].map(async (uuid) => (await taskOf(uuid)).position));
    expect(places).toEqual([1, 2, 3]);

    const tasks = await waitFor(
      () => Promise.all([early, low, late].map(taskOf)),
      (all) => all.every((t) => t.status === "succeeded"),
      30_000,
    );
    const starts = tasks.map((t) => Date.parse(t.start_time));
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
  });
});
