import { randomBytes } from "node:crypto";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { S3BlobStore } from "../../adapters/aws/s3-blobs.ts";
import { SqsPoolQueue } from "../../adapters/aws/sqs-queue.ts";
import { localClients } from "../../local/aws-clients.ts";
import { describeBlobContract } from "../contract/blobs.contract.ts";
import { describeQueueContract } from "../contract/queue.contract.ts";

const clients = localClients(inject("emulators"));
const suffix = randomBytes(4).toString("hex");
const bucket = `blob-contract-${suffix}`;
const VISIBILITY_SECONDS = 2;

beforeAll(async () => {
  await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
});
afterAll(() => {
  for (const client of Object.values(clients)) client.destroy();
});

let queues = 0;
describeQueueContract("SqsPoolQueue on fauxqs", async () => {
  const pool = `contract-${suffix}-${++queues}`;
  const { QueueUrl } = await clients.sqs.send(
    new CreateQueueCommand({
      QueueName: `${pool}.fifo`,
      Attributes: {
        FifoQueue: "true",
        ContentBasedDeduplication: "false",
        VisibilityTimeout: String(VISIBILITY_SECONDS),
      },
    }),
  );
  return {
    queue: new SqsPoolQueue(clients.sqs, { [pool]: QueueUrl ?? "" }),
    pool,
    visibilitySeconds: VISIBILITY_SECONDS,
  };
});

describeBlobContract("S3BlobStore on fauxqs", async () => new S3BlobStore(clients.s3, bucket));

describe("SqsPoolQueue dead letters on fauxqs", () => {
  it("counts a pool's dead letters and tells the oldest one's age, leaving them there", async () => {
    const pool = `dead-${suffix}`;
    const dlq = await clients.sqs.send(
      new CreateQueueCommand({ QueueName: `${pool}-dlq.fifo`, Attributes: { FifoQueue: "true" } }),
    );
    const { Attributes } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }),
    );
    const main = await clients.sqs.send(
      new CreateQueueCommand({
        QueueName: `${pool}.fifo`,
        Attributes: {
          FifoQueue: "true",
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes?.QueueArn, maxReceiveCount: 5 }),
        },
      }),
    );
    const queue = new SqsPoolQueue(clients.sqs, { [pool]: main.QueueUrl ?? "" });
    expect(await queue.deadLetters(pool)).toEqual({ count: 0 });
    for (const n of [1, 2]) {
      await clients.sqs.send(
        new SendMessageCommand({
          QueueUrl: dlq.QueueUrl,
          MessageBody: `poison ${n}`,
          MessageGroupId: `g${n}`,
          MessageDeduplicationId: `d${n}`,
        }),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const first = await queue.deadLetters(pool);
    expect(first.count).toBe(2);
    expect(first.oldestAgeSeconds).toBeGreaterThanOrEqual(1);
    expect(first.oldestAgeSeconds).toBeLessThan(30);
    // Looked at, not taken.
    expect((await queue.deadLetters(pool)).count).toBe(2);
  });
});
