import type { Context, SQSRecord } from "aws-lambda";
import { afterEach, describe, expect, it } from "vitest";
import {
  CALLBACK_HEADERS,
  type CallbackRetryQueue,
  callbackRetryDelaySeconds,
  deliverCallback,
  MAX_RECORDED_DELIVERIES,
  MAX_RETRY_DELAY_SECONDS,
  parseEventMessage,
  redeliverySeconds,
  signatureHeader,
  verifySignature,
} from "../../core/callbacks.ts";
import { ValidationError } from "../../core/errors.ts";
import type { DomainEvent } from "../../core/events.ts";
import { ENV } from "../../core/names.ts";
import type { Resolver } from "../../core/ports.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { submitTask } from "../../core/tasks.ts";
import { callbacksHandler } from "../../functions/callbacks.ts";
import { type AwsClients, depsFromEnv } from "../../runtime/composition.ts";
import { parseSchedulerConfig } from "../../runtime/scheduler-config.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";
import { startReceiver, type WebhookReceiver } from "../support/webhook-receiver.ts";

const CONFIG = `
pools:
  - { name: p, tool: claude, account: acme, max_concurrency: 1 }
`;
const SECRET = "test-callback-secret";

describe("signatures", () => {
  const body = '{"name":"n","uuid":"u","runid":"r","status":"succeeded","message":null}';
  const now = 1_780_000_000;

  it("verifies its own signature, over the timestamp and the exact body", () => {
    const header = signatureHeader(SECRET, body, now);
    expect(header).toMatch(/^t=1780000000,v1=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, header, body, 300, now)).toBe(true);
    expect(verifySignature(SECRET, header, body, 300, now + 300)).toBe(true);
  });

  it("refuses another secret, another body, another timestamp, or a stale or future one", () => {
    const header = signatureHeader(SECRET, body, now);
    expect(verifySignature("other-secret", header, body, 300, now)).toBe(false);
    expect(verifySignature(SECRET, header, body.replace("succeeded", "failed"), 300, now)).toBe(false);
    expect(
      verifySignature(SECRET, `${header} `.replace("t=1780000000", "t=1780000001"), body, 300, now),
    ).toBe(false);
    expect(verifySignature(SECRET, header, body, 300, now + 301)).toBe(false);
    expect(verifySignature(SECRET, header, body, 300, now - 301)).toBe(false);
  });

  it("refuses malformed headers", () => {
    const v1 = signatureHeader(SECRET, body, now).split(",")[1] as string;
    for (const header of [
      undefined,
      "",
      v1,
      `t=${now}`,
      `t=abc,${v1}`,
      `t=${now},v1=zz`,
      `t=${now},v0=${v1.slice(3)}`,
      `t=-${now},${v1}`,
    ]) {
      expect(verifySignature(SECRET, header, body, 300, now), String(header)).toBe(false);
    }
    expect(verifySignature("", signatureHeader("", body, now), body, 300, now)).toBe(false);
  });

  it("accepts any of several v1 signatures (a rotated secret)", () => {
    const old = signatureHeader("old-secret", body, now);
    const current = signatureHeader(SECRET, body, now).split(",")[1];
    expect(verifySignature(SECRET, `${old},${current}`, body, 300, now)).toBe(true);
    expect(verifySignature("old-secret", `${old},${current}`, body, 300, now)).toBe(true);
  });
});

describe("callbackRetryDelaySeconds", () => {
  it("doubles per attempt within ±20 %, up to the cap", () => {
    expect([1, 2, 3, 4].map((a) => callbackRetryDelaySeconds(a, 60, () => 0.5))).toEqual([60, 120, 240, 480]);
    expect(callbackRetryDelaySeconds(1, 60, () => 0)).toBe(48);
    expect(callbackRetryDelaySeconds(1, 60, () => 0.999_999)).toBe(72);
    expect(callbackRetryDelaySeconds(10, 60, () => 0.5)).toBe(MAX_RETRY_DELAY_SECONDS);
    expect(callbackRetryDelaySeconds(3, 0, () => 0.5)).toBe(0);
  });

  it("hands a message back after the backoff, and at once after the last attempt", () => {
    expect([1, 4, 5].map((a) => redeliverySeconds(a, 5, 60, () => 0.5))).toEqual([60, 480, 0]);
  });
});

describe("parseEventMessage", () => {
  const event: DomainEvent = {
    id: "e1",
    type: "run.succeeded",
    time: "2026-01-01T00:00:00.000Z",
    tenant: "t",
    pool: "p",
    status: "succeeded",
    task_uuid: "u",
  };
  it("reads a raw event and an SNS envelope around one", () => {
    expect(parseEventMessage(JSON.stringify(event))).toEqual(event);
    const envelope = { Type: "Notification", MessageId: "m", Message: JSON.stringify(event) };
    expect(parseEventMessage(JSON.stringify(envelope))).toEqual(event);
  });
  it("throws on anything else", () => {
    expect(() => parseEventMessage("not json")).toThrow();
    expect(() => parseEventMessage('{"hello":1}')).toThrow(/not an event/);
    expect(() => parseEventMessage("null")).toThrow(/not an event/);
  });
});

describe("deliverCallback", () => {
  let receiver: WebhookReceiver | undefined;
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });

  /** A task with a callback, and a run-end event of it. */
  async function setup(callback: string, allowLoopback = true) {
    const { deps, clock } = memoryDeps(CONFIG);
    const local = { ...deps, callbackPolicy: { allowLoopback: true } };
    const { task } = await submitTask(
      local,
      ADMIN,
      submitTaskSchema.parse({ pool: "p", prompt: "go", name: "nightly", callback }),
    );
    const event: DomainEvent = {
      id: `2026-01-01T00:00:05.000Z#000000004#0`,
      type: "run.failed",
      time: "2026-01-01T00:00:05.000Z",
      tenant: task.tenant,
      pool: task.pool,
      status: "failed",
      task_uuid: task.uuid,
      name: task.name,
      run_id: `${task.uuid}-1`,
      attempt: 1,
      message: "exit code 3",
      callback,
    };
    return { deps: { ...deps, callbackPolicy: { allowLoopback } }, clock, task, event };
  }

  it("POSTs the signed callback body and records the delivery on the task", async () => {
    receiver = await startReceiver();
    const { deps, event, task } = await setup(`${receiver.url}/hooks/switchyard?team=docs`);
    const result = await deliverCallback(deps, event, 1);
    expect(result).toEqual({ outcome: "delivered", httpStatus: 200 });

    const [call] = receiver.calls;
    expect(call?.method).toBe("POST");
    expect(call?.path).toBe("/hooks/switchyard?team=docs");
    expect(JSON.parse(call?.body ?? "")).toEqual({
      name: "nightly",
      uuid: task.uuid,
      runid: `${task.uuid}-1`,
      status: "failed",
      message: "exit code 3",
    });
    expect(call?.headers["content-type"]).toBe("application/json");
    expect(call?.headers[CALLBACK_HEADERS.eventId]).toBe(event.id);
    expect(call?.headers[CALLBACK_HEADERS.eventType]).toBe("run.failed");
    expect(call?.headers[CALLBACK_HEADERS.attempt]).toBe("1");
    const signature = call?.headers[CALLBACK_HEADERS.signature] as string;
    const now = Math.floor(deps.clock.now().getTime() / 1000);
    expect(verifySignature(SECRET, signature, call?.body ?? "", 300, now)).toBe(true);

    const stored = await deps.tasks.getTask(task.uuid);
    expect(stored?.callback_deliveries).toEqual([
      {
        time: "2026-01-01T00:00:00.000Z",
        event_id: event.id,
        type: "run.failed",
        run_id: `${task.uuid}-1`,
        attempt: 1,
        outcome: "delivered",
        http_status: 200,
      },
    ]);
    // Recording a delivery changes nothing else on the task.
    expect({ ...stored, version: 0, callback_deliveries: undefined }).toEqual({
      ...task,
      version: 0,
      callback_deliveries: undefined,
    });
  });

  it("retries a 5xx, a 429, a refused connection and a timeout; records each", async () => {
    receiver = await startReceiver((_call, n) => (n === 1 ? 503 : n === 2 ? 429 : "hang"));
    const { deps, event, task } = await setup(`${receiver.url}/hook`);
    expect(await deliverCallback(deps, event, 1)).toMatchObject({ outcome: "retry", httpStatus: 503 });
    expect(await deliverCallback(deps, event, 2)).toMatchObject({ outcome: "retry", httpStatus: 429 });
    const timedOut = await deliverCallback(deps, event, 3, { timeoutMs: 300 });
    expect(timedOut).toMatchObject({
      outcome: "retry",
      error: expect.stringMatching(/no answer within 0.3 s/),
    });
    await receiver.close();
    const refused = await deliverCallback(deps, event, 4);
    expect(refused).toMatchObject({ outcome: "retry", error: expect.stringMatching(/ECONNREFUSED/) });

    const deliveries = (await deps.tasks.getTask(task.uuid))?.callback_deliveries ?? [];
    expect(deliveries.map((d) => [d.attempt, d.outcome, d.http_status])).toEqual([
      [1, "retry", 503],
      [2, "retry", 429],
      [3, "retry", undefined],
      [4, "retry", undefined],
    ]);
    receiver = undefined;
  });

  it("records the last allowed attempt as given up, pointing at the DLQ", async () => {
    receiver = await startReceiver(() => 500);
    const { deps, event, task } = await setup(`${receiver.url}/hook`);
    expect(await deliverCallback(deps, event, 5, { maxAttempts: 5 })).toMatchObject({ outcome: "retry" });
    const [last] = (await deps.tasks.getTask(task.uuid))?.callback_deliveries ?? [];
    expect(last).toMatchObject({ attempt: 5, outcome: "failed", http_status: 500 });
    expect(last?.error).toMatch(/gave up after 5 attempts.*dead-letter queue/);
  });

  it("does not follow a redirect", async () => {
    receiver = await startReceiver((call) =>
      call.path === "/hook" ? { status: 302, headers: { location: "/elsewhere" } } : 200,
    );
    const { deps, event } = await setup(`${receiver.url}/hook`);
    expect(await deliverCallback(deps, event, 1)).toMatchObject({
      outcome: "retry",
      httpStatus: 302,
      error: expect.stringMatching(/redirects are not followed/),
    });
    expect(receiver.calls.map((c) => c.path)).toEqual(["/hook"]);
  });

  it("gives up at once on 410 Gone", async () => {
    receiver = await startReceiver(() => 410);
    const { deps, event } = await setup(`${receiver.url}/hook`);
    expect(await deliverCallback(deps, event, 1)).toMatchObject({ outcome: "failed", httpStatus: 410 });
  });

  it("refuses at delivery what the policy refuses, without sending anything", async () => {
    receiver = await startReceiver();
    const { deps, event, task } = await setup(`${receiver.url}/hook`, false);
    const result = await deliverCallback(deps, event, 1);
    expect(result).toEqual({ outcome: "failed", error: "refused: must use https" });
    expect(receiver.calls).toEqual([]);
    expect((await deps.tasks.getTask(task.uuid))?.callback_deliveries?.[0]).toMatchObject({
      outcome: "failed",
      error: "refused: must use https",
    });
  });

  it("refuses a name that resolves to a private address at delivery (rebinding)", async () => {
    const { deps, event } = await setup("https://hooks.example.com/hook");
    const resolve: Resolver = async () => [{ address: "10.0.0.7", family: 4 }];
    expect(await deliverCallback({ ...deps, resolve }, event, 1)).toEqual({
      outcome: "failed",
      error: "refused: hooks.example.com resolves to 10.0.0.7, a private address",
    });
  });

  it("connects to the vetted address, not to a second resolution of the name", async () => {
    // The receiver listens on 127.0.0.2 only; the system resolves localhost to 127.0.0.1 (or ::1).
    receiver = await startReceiver(() => 204, "127.0.0.2");
    const { deps, event } = await setup(`http://localhost:${receiver.port}/hook`);
    let lookups = 0;
    const resolve: Resolver = async () => {
      lookups++;
      return [{ address: "127.0.0.2", family: 4 }];
    };
    expect(await deliverCallback({ ...deps, resolve }, event, 1)).toEqual({
      outcome: "delivered",
      httpStatus: 204,
    });
    expect(lookups).toBe(1);
    expect(receiver.calls[0]?.headers.host).toBe(`localhost:${receiver.port}`);
  });

  it("keeps the latest deliveries only", async () => {
    receiver = await startReceiver(() => 500);
    const { deps, event, task } = await setup(`${receiver.url}/hook`);
    for (let attempt = 1; attempt <= MAX_RECORDED_DELIVERIES + 3; attempt++) {
      await deliverCallback(deps, event, attempt);
    }
    const deliveries = (await deps.tasks.getTask(task.uuid))?.callback_deliveries ?? [];
    expect(deliveries).toHaveLength(MAX_RECORDED_DELIVERIES);
    expect(deliveries[0]?.attempt).toBe(4);
  });

  it("will not send unsigned", async () => {
    const { deps, event } = await setup("https://hooks.example.com/hook");
    await expect(deliverCallback({ ...deps, callbackSecret: "" }, event, 1)).rejects.toThrow(/secret/);
  });
});

describe("submitting a callback", () => {
  const submitWith = (allowLoopback: boolean, callback: string) => {
    const { deps } = memoryDeps(CONFIG);
    const input = submitTaskSchema.parse({ pool: "p", prompt: "go", callback });
    return submitTask({ ...deps, callbackPolicy: { allowLoopback } }, ADMIN, input);
  };

  it("refuses what the policy refuses: a 1001 naming callback", async () => {
    const err = await submitWith(false, "http://127.0.0.1:9000/hook").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err).toMatchObject({ code: "1001", field: "callback", message: "callback: must use https" });
    await expect(submitWith(true, "https://10.0.0.1/")).rejects.toThrow(
      "callback: 10.0.0.1 is a private address",
    );
  });

  it("accepts loopback only where the policy allows it", async () => {
    await expect(submitWith(true, "http://127.0.0.1:9000/hook")).resolves.toMatchObject({ created: true });
    await expect(submitWith(false, "https://localhost/hook")).rejects.toThrow(/loopback/);
    await expect(submitWith(false, "https://hooks.example.com/x")).resolves.toMatchObject({ created: true });
  });
});

describe("the loopback switch", () => {
  const policyFrom = (extra: NodeJS.ProcessEnv) =>
    depsFromEnv({} as AwsClients, console, parseSchedulerConfig(CONFIG), {
      [ENV.tableName]: "t",
      [ENV.bucketName]: "b",
      [ENV.queueUrls]: "{}",
      ...extra,
    }).callbackPolicy;

  it("is off unless set to exactly true, and always off inside a Lambda function", () => {
    expect(policyFrom({})).toEqual({ allowLoopback: false });
    expect(policyFrom({ [ENV.allowLoopbackCallbacks]: "1" })).toEqual({ allowLoopback: false });
    expect(policyFrom({ [ENV.allowLoopbackCallbacks]: "true" })).toEqual({ allowLoopback: true });
    expect(
      policyFrom({ [ENV.allowLoopbackCallbacks]: "true", AWS_LAMBDA_FUNCTION_NAME: "switchyard-callbacks" }),
    ).toEqual({ allowLoopback: false });
  });
});

describe("the callback function's handler", () => {
  let receiver: WebhookReceiver | undefined;
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });

  const record = (id: string, body: string, receiveCount: number): SQSRecord => ({
    messageId: id,
    receiptHandle: `rh-${id}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: "0",
      SenderId: "s",
      ApproximateFirstReceiveTimestamp: "0",
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:callbacks",
    awsRegion: "us-east-1",
  });

  it("reports only what must be tried again, and delays it with backoff (none on the last attempt)", async () => {
    receiver = await startReceiver((call) => (call.path === "/ok" ? 200 : 500));
    const { deps } = memoryDeps(CONFIG);
    const local = { ...deps, callbackPolicy: { allowLoopback: true } };
    const submit = (callback: string) =>
      submitTask(local, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: "go", callback })).then(
        (o) => o.task,
      );
    const [ok, bad] = [await submit(`${receiver.url}/ok`), await submit(`${receiver.url}/bad`)];
    const event = (task: typeof ok, type = "run.succeeded"): string =>
      JSON.stringify({
        id: `${task.uuid}-e`,
        type,
        time: "2026-01-01T00:00:00.000Z",
        tenant: task.tenant,
        pool: task.pool,
        status: type.split(".")[1],
        task_uuid: task.uuid,
        run_id: `${task.uuid}-1`,
        callback: task.callback,
      });
    const delays: [string, number][] = [];
    const retries: CallbackRetryQueue = {
      delay: async (receiptHandle, seconds) => {
        delays.push([receiptHandle, seconds]);
      },
    };
    const handler = callbacksHandler(async () => ({
      deps: local,
      retries,
      retrySeconds: 10,
      maxAttempts: 5,
    }));
    const response = await handler(
      {
        Records: [
          record("delivered", event(ok), 1),
          record("failing", event(bad), 2),
          record("last-try", event(bad), 5),
          record("not-a-run-end", event(bad, "task.dispatched"), 1),
          record("junk", "{not json", 1),
        ],
      },
      {} as Context,
    );
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual([
      "failing",
      "junk",
      "last-try",
    ]);
    expect(delays.sort()).toEqual([
      ["rh-failing", 20], // 10 s doubled once; random is 0.5 in memoryDeps: no jitter
      ["rh-junk", 10],
      ["rh-last-try", 0],
    ]);
    expect(receiver.calls.map((c) => c.path).sort()).toEqual(["/bad", "/bad", "/ok"]);
  });
});
