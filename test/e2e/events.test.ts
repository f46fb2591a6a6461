import type { Message } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { receiveFirst, subscribedQueue } from "../support/queues.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack(
    "pools:\n  - { name: main, tool: claude, account: main, max_concurrency: 2 }\n",
    {
      workerEnv: { PATH: FAKE_CLI_PATH },
    },
  );
});
afterAll(async () => {
  await stack?.stop();
});

describe("events", () => {
  it("keeps one event per transition, in order, readable in pages", async () => {
    const res = await stack.call("POST", "/v2/tasks", {
      body: { tool: "claude", prompt: "hi", name: "greet" },
    });
    const uuid = res.json?.data.uuid as string;
    await waitFor(
      async () => (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data.status,
      (s) => s === "succeeded",
    );
    const types: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?size=2&cursor=${encodeURIComponent(cursor)}` : "?size=2";
      const page = await stack.call("GET", `/v2/tasks/${uuid}/events${query}`);
      expect(page.json?.data.total).toBe(6);
      for (const event of page.json?.data.events ?? []) types.push(event.type);
      cursor = page.json?.data.next_cursor;
    } while (cursor);
    expect(types).toEqual([
      "task.created",
      "task.dispatched",
      "run.started",
      "task.running",
      "run.succeeded",
      "task.succeeded",
    ]);
    const first = (await stack.call("GET", `/v2/tasks/${uuid}/events?size=1`)).json?.data.events[0];
    expect(first).toMatchObject({ type: "task.created", status: "queued", task_uuid: uuid, name: "greet" });
  });

  it("publishes every event to the topic; a filtered subscriber gets only what matches", async () => {
    const { sqs } = stack.clients;
    const queueUrl = await subscribedQueue(stack.clients, stack.resources.topicArn, ["run.succeeded"]);
    const res = await stack.call("POST", "/v2/tasks", { body: { tool: "claude", prompt: "publish me" } });
    const uuid = res.json?.data.uuid as string;
    // The subscription may also get an earlier task's run.succeeded, published late: every message it gets
    // matches the filter, and this task's is among them.
    const seen: Message[] = [];
    const received = await receiveFirst(sqs, queueUrl, {
      wanted: (message) => {
        seen.push(message);
        return JSON.parse(message.Body ?? "{}").task_uuid === uuid;
      },
    });
    expect(seen.map((m) => JSON.parse(m.Body ?? "{}").type)).toEqual(seen.map(() => "run.succeeded"));
    expect(received).toHaveLength(1);
    expect(JSON.parse(received[0]?.Body ?? "{}")).toMatchObject({ type: "run.succeeded", task_uuid: uuid });
    expect(received[0]?.MessageAttributes?.type?.StringValue).toBe("run.succeeded");
    expect(received[0]?.MessageAttributes?.tenant?.StringValue).toBe("default");
  });
});
