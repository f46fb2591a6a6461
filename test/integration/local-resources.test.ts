import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { GetTopicAttributesCommand } from "@aws-sdk/client-sns";
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { TABLE } from "../../core/names.ts";
import { localClients } from "../../local/aws-clients.ts";
import { createLocalResources, type LocalNames, type LocalResources } from "../../local/resources.ts";
import { parseSchedulerConfig } from "../../runtime/scheduler-config.ts";

const config = parseSchedulerConfig(`
pools:
  - { name: claude-main, tool: claude, account: main, max_concurrency: 2 }
  - { name: codex-main, tool: codex, account: main, max_concurrency: 1, lease_seconds: 45 }
`);

// A prefix of its own, so this file shares the emulators without sharing resources.
const prefix = `lr-${Date.now().toString(36)}`;
const names: LocalNames = {
  table: `${prefix}-table`,
  bucket: `${prefix}-bucket`,
  topic: `${prefix}-events`,
  queue: (pool) => `${prefix}-${pool}.fifo`,
};

describe("createLocalResources", () => {
  const clients = localClients(inject("emulators"));
  let resources: LocalResources;

  beforeAll(async () => {
    resources = await createLocalResources(clients, config, names);
  });
  afterAll(() => {
    for (const client of Object.values(clients)) client.destroy();
  });

  it("creates an ACTIVE table with the three GSIs", async () => {
    const { Table } = await clients.dynamodb.send(
      new DescribeTableCommand({ TableName: resources.tableName }),
    );
    expect(Table?.TableStatus).toBe("ACTIVE");
    expect(Table?.GlobalSecondaryIndexes?.map((index) => index.IndexName).sort()).toEqual(
      Object.values(TABLE.indexes)
        .map((index) => index.name)
        .sort(),
    );
  });

  it("creates one FIFO queue per pool that deduplicates by MessageDeduplicationId", async () => {
    expect(Object.keys(resources.queueUrls).sort()).toEqual(["claude-main", "codex-main"]);
    const queueUrl = resources.queueUrls["claude-main"];
    const message = { QueueUrl: queueUrl, MessageBody: '{"run_id":"r1"}', MessageGroupId: "main" };
    await clients.sqs.send(new SendMessageCommand({ ...message, MessageDeduplicationId: "r1" }));
    await clients.sqs.send(new SendMessageCommand({ ...message, MessageDeduplicationId: "r1" }));

    const { Messages } = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    expect(Messages?.map((m) => m.Body)).toEqual(['{"run_id":"r1"}']);
  });

  it("gives each pool queue its lease as visibility and a dead-letter queue after 5 receives, as on AWS", async () => {
    const { Attributes } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: resources.queueUrls["codex-main"], AttributeNames: ["All"] }),
    );
    expect(Attributes?.FifoQueue).toBe("true");
    expect(Attributes?.VisibilityTimeout).toBe("45");
    expect(Attributes).toMatchObject({
      DeduplicationScope: "messageGroup",
      FifoThroughputLimit: "perMessageGroupId",
    });
    expect(JSON.parse(Attributes?.RedrivePolicy ?? "{}")).toEqual({
      deadLetterTargetArn: expect.stringMatching(new RegExp(`:${prefix}-codex-main-dlq\\.fifo$`)),
      maxReceiveCount: 5,
    });
  });

  it("is idempotent", async () => {
    await expect(createLocalResources(clients, config, names)).resolves.toEqual(resources);
  });

  it("creates a bucket that stores and returns objects", async () => {
    await clients.s3.send(
      new PutObjectCommand({ Bucket: resources.bucketName, Key: "runs/r1/out/report.md", Body: "# done" }),
    );
    const object = await clients.s3.send(
      new GetObjectCommand({ Bucket: resources.bucketName, Key: "runs/r1/out/report.md" }),
    );
    expect(await object.Body?.transformToString()).toBe("# done");
  });

  it("creates the events topic", async () => {
    const { Attributes } = await clients.sns.send(
      new GetTopicAttributesCommand({ TopicArn: resources.topicArn }),
    );
    expect(Attributes?.TopicArn).toBe(resources.topicArn);
    expect(resources.topicArn).toMatch(new RegExp(`:${prefix}-events$`));
  });
});
