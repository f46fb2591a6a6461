import { SubscribeCommand } from "@aws-sdk/client-sns";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
} from "@aws-sdk/client-sqs";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { SnsEventBus } from "../../adapters/aws/sns-events.ts";
import { SqsCallbackRetryQueue } from "../../adapters/aws/sqs-callback-queue.ts";
import { verifySignature } from "../../core/callbacks.ts";
import { systemClock } from "../../core/deps.ts";
import type { DomainEvent } from "../../core/events.ts";
import { CALLBACK_MAX_RECEIVES } from "../../core/names.ts";
import type { Task } from "../../core/records.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { submitTask } from "../../core/tasks.ts";
import { callbacksHandler } from "../../functions/callbacks.ts";
import { localClients } from "../../local/aws-clients.ts";
import { createLocalResources, type LocalResources } from "../../local/resources.ts";
import { startSqsEventSource } from "../../local/sqs-event-source.ts";
import { parseSchedulerConfig } from "../../runtime/scheduler-config.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";
import { expectDeadLettered, receiveFirst } from "../support/queues.ts";
import { waitFor } from "../support/wait.ts";
import { startReceiver, type WebhookReceiver } from "../support/webhook-receiver.ts";

const CONFIG = "pools:\n  - { name: p, tool: claude, account: a, max_concurrency: 1 }\n";
const prefix = `cb-${Date.now().toString(36)}`;
const clients = localClients(inject("emulators"));
let resources: LocalResources;

beforeAll(async () => {
  resources = await createLocalResources(clients, parseSchedulerConfig(CONFIG), {
    table: `${prefix}-table`,
    bucket: `${prefix}-bucket`,
    topic: `${prefix}-events`,
    queue: (pool) => `${prefix}-${pool}.fifo`,
  });
});
afterAll(() => {
  for (const client of Object.values(clients)) client.destroy();
});

let n = 0;
const anEvent = (fields: Partial<DomainEvent> & Pick<DomainEvent, "type" | "status">): DomainEvent => ({
  id: `2026-01-01T00:00:00.000Z#${String(++n).padStart(9, "0")}#0`,
  time: "2026-01-01T00:00:00.000Z",
  tenant: "default",
  pool: "p",
  task_uuid: "00000000-0000-4000-8000-000000000000",
  ...fields,
});

/** Publishes an event as the relay does, through the same adapter. */
const publish = (event: DomainEvent) => new SnsEventBus(clients.sns, resources.topicArn).publish([event]);

/** Every message now on the queue (receiving hides them for the queue's visibility timeout). */
async function drain(queueUrl: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const { Messages = [] } = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    if (Messages.length === 0) return all;
    all.push(...Messages);
  }
}

const queueArn = async (url: string) =>
  (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] })))
    .Attributes?.QueueArn as string;

describe("subscriptions to the events topic", () => {
  it("feeds the callback queue run-end events of tasks with a callback only, raw, with a DLQ after 5 receives", async () => {
    const types = [
      ["task.created", "queued"],
      ["task.dispatched", "dispatched"],
      ["run.started", "running"],
      ["run.succeeded", "succeeded"],
      ["run.failed", "failed"],
      ["run.lost", "lost"],
      ["run.canceled", "canceled"],
      ["task.succeeded", "succeeded"],
    ] as const;
    const events = types.map(([type, status]) =>
      anEvent({ type, status, callback: "https://example.com/hook" }),
    );
    // A task without a callback URL: its run-end events never reach the callback queue.
    const plain = types.map(([type, status]) => anEvent({ type, status }));
    for (const event of [...plain, ...events]) await publish(event);

    const received = (await drain(resources.callbackQueueUrl)).map((m) => JSON.parse(m.Body ?? ""));
    expect(received.map((e) => e.type).sort()).toEqual([
      "run.canceled",
      "run.failed",
      "run.lost",
      "run.succeeded",
    ]);
    // Raw delivery: the body is the event itself, not an SNS envelope.
    expect(received.find((e) => e.type === "run.failed")).toEqual(events[4]);

    const { Attributes } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: resources.callbackQueueUrl, AttributeNames: ["All"] }),
    );
    expect(JSON.parse(Attributes?.RedrivePolicy ?? "{}")).toEqual({
      deadLetterTargetArn: await queueArn(resources.callbackDlqUrl),
      maxReceiveCount: CALLBACK_MAX_RECEIVES,
    });
  });

  it("gives a team's own queue only what its filter policy matches", async () => {
    // What the README shows: a team subscribes its queue to its tenant's failures.
    const { QueueUrl } = await clients.sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-team-acme` }));
    await clients.sns.send(
      new SubscribeCommand({
        TopicArn: resources.topicArn,
        Protocol: "sqs",
        Endpoint: await queueArn(QueueUrl as string),
        Attributes: {
          RawMessageDelivery: "true",
          FilterPolicy: JSON.stringify({ tenant: ["acme"], type: ["run.failed", "run.lost"] }),
        },
      }),
    );
    const wanted = [
      anEvent({ tenant: "acme", type: "run.failed", status: "failed", message: "exit code 1" }),
      anEvent({ tenant: "acme", type: "run.lost", status: "lost" }),
    ];
    const others = [
      anEvent({ tenant: "acme", type: "run.succeeded", status: "succeeded" }),
      anEvent({ tenant: "zeta", type: "run.failed", status: "failed" }),
      anEvent({ tenant: "acme", type: "task.failed", status: "failed" }),
    ];
    for (const event of [...others, ...wanted]) await publish(event);

    const received = (await drain(QueueUrl as string)).map((m) => JSON.parse(m.Body ?? ""));
    expect(received.sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(wanted);
    await drain(resources.callbackQueueUrl);
  });
});

describe("the callback function fed by the topic (local deliverer)", () => {
  const SECRET = "integration-secret";
  const { deps: memory } = memoryDeps(CONFIG);
  const deps = {
    ...memory,
    clock: systemClock,
    callbackSecret: SECRET,
    callbackPolicy: { allowLoopback: true },
  };
  let receiver: WebhookReceiver;
  let deliverer: { stop(): Promise<void> };

  beforeAll(() => {
    deliverer = startSqsEventSource({
      functionName: "switchyard-callbacks",
      sqs: clients.sqs,
      queueUrl: resources.callbackQueueUrl,
      queueArn: resources.callbackQueueArn,
      region: "us-east-1",
      handler: callbacksHandler(async () => ({
        deps,
        retries: new SqsCallbackRetryQueue(clients.sqs, resources.callbackQueueUrl),
        retrySeconds: 1,
        maxAttempts: CALLBACK_MAX_RECEIVES,
      })),
      log: deps.log,
    });
  });
  afterAll(async () => {
    await deliverer?.stop();
  });
  afterEach(async () => {
    await receiver?.close();
  });

  const taskWith = async (callback: string): Promise<Task> =>
    (
      await submitTask(
        deps,
        ADMIN,
        submitTaskSchema.parse({ pool: "p", prompt: "go", name: "job", callback }),
      )
    ).task;
  const ended = (task: Task, type: "run.succeeded" | "run.failed", message?: string) =>
    anEvent({
      type,
      status: type.slice(4),
      task_uuid: task.uuid,
      name: task.name,
      run_id: `${task.uuid}-1`,
      message,
      callback: task.callback,
    });

  it("delivers a signed body once, after two failures, with every attempt on the task", async () => {
    receiver = await startReceiver((_call, n) => (n <= 2 ? 500 : 200));
    const task = await taskWith(`${receiver.url}/hook`);
    await publish(ended(task, "run.failed", "exit code 2"));

    const deliveries = await waitFor(
      async () => (await deps.tasks.getTask(task.uuid))?.callback_deliveries ?? [],
      (d) => d.some((x) => x.outcome === "delivered"),
      20_000,
    );
    expect(deliveries.map((d) => [d.attempt, d.outcome, d.http_status])).toEqual([
      [1, "retry", 500],
      [2, "retry", 500],
      [3, "delivered", 200],
    ]);
    expect(receiver.calls).toHaveLength(3);
    const last = receiver.calls[2];
    expect(JSON.parse(last?.body ?? "")).toEqual({
      name: "job",
      uuid: task.uuid,
      runid: `${task.uuid}-1`,
      status: "failed",
      message: "exit code 2",
    });
    expect(verifySignature(SECRET, last?.headers["x-switchyard-signature"] as string, last?.body ?? "")).toBe(
      true,
    );
  });

  it("moves a dead receiver's event to the DLQ after 5 attempts", async () => {
    receiver = await startReceiver();
    const dead = `${receiver.url}/hook`;
    await receiver.close();
    const task = await taskWith(dead);
    const event = ended(task, "run.succeeded");
    await publish(event);

    const inDlq = await receiveFirst(clients.sqs, resources.callbackDlqUrl, { ms: 45_000 });
    expect(inDlq.map((m) => JSON.parse(m.Body ?? ""))).toEqual([event]);
    expectDeadLettered((await deps.tasks.getTask(task.uuid))?.callback_deliveries ?? []);
  }, 60_000);
});
