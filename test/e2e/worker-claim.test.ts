import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestStack, type TestStack } from "../support/stack.ts";

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack("pools:\n  - { name: main, tool: gemini, account: a, max_concurrency: 2 }\n");
});
afterAll(async () => {
  await stack?.stop();
});

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("local worker", () => {
  it("claims a dispatched run: task and run move to running, with the worker and a lease", async () => {
    const res = await stack.call("POST", "/v2/tasks", { body: { tool: "gemini", prompt: "hello" } });
    expect(res.json).toMatchObject({ success: true, data: { status: "dispatched" } });
    const runId = res.json?.data.run_id as string;
    const run = await waitFor(
      async () => (await stack.call("GET", `/v2/instances/${runId}`)).json,
      (answer) => answer?.data?.status === "running",
    ).then((answer) => answer?.data ?? answer);
    expect(run).toMatchObject({
      status: "running",
      worker: expect.any(String),
      start_time: expect.any(String),
    });
    expect(Date.parse(run.lease_expires_at)).toBeGreaterThan(Date.now());
    const task = (await stack.call("GET", `/v2/tasks/${res.json?.data.uuid}`)).json?.data;
    expect(task).toMatchObject({ status: "running", start_time: run.start_time });
  });
});
