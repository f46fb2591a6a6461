import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CALLBACK_HEADERS, verifySignature } from "../../core/callbacks.ts";
import type { CallbackDelivery } from "../../core/records.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { expectDeadLettered, receiveFirst } from "../support/queues.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";
import { waitFor } from "../support/wait.ts";
import {
  type Answer,
  type ReceivedCall,
  startReceiver,
  type WebhookReceiver,
} from "../support/webhook-receiver.ts";

const SECRET = "whsec_e2e-callbacks";

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack(
    "pools:\n  - { name: main, tool: claude, account: main, max_concurrency: 4, retry: { base_seconds: 1, max_seconds: 1 } }\n",
    {
      workerEnv: {
        PATH: FAKE_CLI_PATH,
        // [fail-first] keeps its state here; the CLI sees only its account's credentials.
        SWITCHYARD_CREDENTIALS_MAIN: JSON.stringify({
          FAKE_CLI_STATE_DIR: mkdtempSync(join(tmpdir(), "fake-cli-state-")),
        }),
      },
      callbackSecret: SECRET,
      // Failed deliveries come back after ~1 s, 2 s, 4 s, 8 s: the DLQ test ends in about 16 s.
      callbackRetrySeconds: 1,
    },
  );
});
afterAll(async () => {
  await stack?.stop();
});

const receivers: WebhookReceiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});
const receiver = async (answer?: (call: ReceivedCall, n: number) => Answer) => {
  const started = await startReceiver(answer);
  receivers.push(started);
  return started;
};

const submit = (body: object) => stack.submit({ tool: "claude", ...body });
const deliveriesOf = async (uuid: string): Promise<CallbackDelivery[]> =>
  (await stack.call("GET", `/v2/tasks/${uuid}`)).json?.data.callback_deliveries ?? [];
const callsAfter = (hook: WebhookReceiver, count: number, ms = 30_000) =>
  waitFor(
    async () => hook.calls,
    (calls) => calls.length >= count,
    ms,
  );
/** The call's signature verifies with the stack's key, over the exact bytes received. */
const signed = (call: ReceivedCall | undefined) =>
  verifySignature(SECRET, call?.headers[CALLBACK_HEADERS.signature] as string | undefined, call?.body ?? "");

describe("callbacks", () => {
  it("POSTs a signed body when a run succeeds", async () => {
    const hook = await receiver();
    const uuid = await submit({ prompt: "hello", name: "greet", callback: `${hook.url}/done?team=docs` });
    const [call] = await callsAfter(hook, 1);
    expect(call).toMatchObject({ method: "POST", path: "/done?team=docs" });
    expect(JSON.parse(call?.body ?? "")).toEqual({
      name: "greet",
      uuid,
      runid: expect.any(String),
      status: "succeeded",
      message: null,
    });
    expect(signed(call)).toBe(true);
    expect(
      verifySignature("another-key", call?.headers[CALLBACK_HEADERS.signature] as string, call?.body ?? ""),
    ).toBe(false);
    expect(call?.headers[CALLBACK_HEADERS.eventType]).toBe("run.succeeded");
    const runs = (await stack.call("GET", `/v2/instances?task_id=${uuid}`)).json?.data.instances;
    expect(JSON.parse(call?.body ?? "").runid).toBe(runs[0].run_id);

    const deliveries = await waitFor(
      () => deliveriesOf(uuid),
      (d) => d.length > 0,
    );
    expect(deliveries).toEqual([
      {
        time: expect.any(String),
        event_id: call?.headers[CALLBACK_HEADERS.eventId],
        type: "run.succeeded",
        run_id: runs[0].run_id,
        attempt: 1,
        outcome: "delivered",
        http_status: 200,
      },
    ]);
  });

  it("POSTs a signed body with the error when a run fails", async () => {
    const hook = await receiver();
    const uuid = await submit({ prompt: "[exit:3] go", max_attempts: 1, callback: `${hook.url}/hook` });
    const [call] = await callsAfter(hook, 1);
    const body = JSON.parse(call?.body ?? "");
    expect(body).toMatchObject({ name: null, uuid, status: "failed" });
    expect(body.message).toMatch(/exit code 3/);
    expect(signed(call)).toBe(true);
  });

  it("calls back once per run end: a failed attempt, then the successful retry", async () => {
    const hook = await receiver();
    const uuid = await submit({
      prompt: "[fail-first:cb-retry] go",
      max_attempts: 2,
      callback: `${hook.url}/h`,
    });
    const calls = await callsAfter(hook, 2);
    const bodies = calls.map((c) => JSON.parse(c.body));
    expect(bodies.map((b) => b.status)).toEqual(["failed", "succeeded"]);
    expect(bodies[0].runid).not.toBe(bodies[1].runid);
    expect(bodies.every((b) => b.uuid === uuid)).toBe(true);
  });

  it("delivers exactly once to a receiver that fails twice, with every attempt on the task", async () => {
    const hook = await receiver((_call, n) => (n <= 2 ? 503 : 200));
    const uuid = await submit({ prompt: "go", callback: `${hook.url}/flaky` });
    const deliveries = await waitFor(
      () => deliveriesOf(uuid),
      (d) => d.some((x) => x.outcome === "delivered"),
      30_000,
    );
    expect(deliveries.map((d) => [d.attempt, d.outcome, d.http_status])).toEqual([
      [1, "retry", 503],
      [2, "retry", 503],
      [3, "delivered", 200],
    ]);
    // Nothing more arrives: accepted once, and the three calls were one event.
    await new Promise((done) => setTimeout(done, 3000));
    expect(hook.calls).toHaveLength(3);
    expect(new Set(hook.calls.map((c) => c.headers[CALLBACK_HEADERS.eventId])).size).toBe(1);
    expect(hook.calls.map((c) => c.headers[CALLBACK_HEADERS.attempt])).toEqual(["1", "2", "3"]);
    expect(hook.calls.every(signed)).toBe(true);
  });

  it("moves a dead receiver's event to the dead-letter queue after 5 attempts", async () => {
    const hook = await receiver();
    const dead = `${hook.url}/gone`;
    await hook.close();
    const uuid = await submit({ prompt: "go", callback: dead });
    const inDlq = await receiveFirst(stack.clients.sqs, stack.resources.callbackDlqUrl, {
      wanted: (m) => JSON.parse(m.Body ?? "{}").task_uuid === uuid,
      ms: 50_000,
    });
    expect(inDlq.map((m) => JSON.parse(m.Body ?? "{}"))).toEqual([
      expect.objectContaining({ type: "run.succeeded", task_uuid: uuid, callback: dead }),
    ]);
    expectDeadLettered(await deliveriesOf(uuid));
  }, 70_000);

  it.each([
    ["https://10.0.0.8/hook", "10.0.0.8 is a private address"],
    ["https://192.168.1.20:8443/hook", "192.168.1.20 is a private address"],
    ["https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a metadata address"],
    ["https://[fd00:ec2::254]/", "fd00:ec2::254 is a metadata address"],
    ["https://[::ffff:10.1.1.1]/", "::ffff:a01:101 is a private address"],
    ["https://0xa9fea9fe/", "169.254.169.254 is a metadata address"],
    [
      "https://metadata.google.internal/computeMetadata/v1/",
      "metadata.google.internal is a cloud metadata endpoint",
    ],
    ["http://hooks.example.com/", "must use https (http only to a loopback host)"],
  ])("refuses the callback %s at submit (400, 1001)", async (callback, reason) => {
    const res = await stack.call("POST", "/v2/tasks", { body: { tool: "claude", prompt: "p", callback } });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: "1001", success: false, message: `callback: ${reason}` });
  });
});
