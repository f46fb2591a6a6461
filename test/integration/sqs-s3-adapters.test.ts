import { randomBytes } from "node:crypto";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CreateQueueCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, inject } from "vitest";
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
