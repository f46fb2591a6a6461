/** The relay's second chance: a failed stream batch, read again from DynamoDB Local's stream and published. */
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "@aws-sdk/client-dynamodb-streams";
import type { SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SnsEventBus } from "../../adapters/aws/sns-events.ts";
import { readStreamBatch } from "../../adapters/aws/stream-replay.ts";
import { replayHandler } from "../../functions/events-replay.ts";
import { receiveFirst, subscribedQueue } from "../support/queues.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";

let stack: TestStack;
let streams: DynamoDBStreamsClient;
beforeAll(async () => {
  stack = await startTestStack(
    "pools:\n  - { name: main, tool: claude, account: main, max_concurrency: 2 }\n",
    {
      workers: false,
    },
  );
  const { dynamodb } = stack.clients;
  streams = new DynamoDBStreamsClient({
    endpoint: dynamodb.config.endpoint,
    region: dynamodb.config.region,
    credentials: dynamodb.config.credentials,
  });
});
afterAll(async () => {
  await stack?.stop();
});

/** The stream record of a task's `task.created` event: where Lambda's failure record would point. */
async function eventRecordOf(uuid: string) {
  const table = await stack.clients.dynamodb.send(
    new DescribeTableCommand({ TableName: stack.resources.tableName }),
  );
  const streamArn = table.Table?.LatestStreamArn as string;
  const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
  for (const shard of StreamDescription?.Shards ?? []) {
    const shardId = shard.ShardId as string;
    let { ShardIterator: iterator } = await streams.send(
      new GetShardIteratorCommand({
        StreamArn: streamArn,
        ShardId: shardId,
        ShardIteratorType: "TRIM_HORIZON",
      }),
    );
    for (let pages = 0; iterator && pages < 50; pages++) {
      const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
      const found = page.Records?.find(
        (r) => r.dynamodb?.NewImage?.sk?.S?.startsWith("EVENT#") && r.dynamodb.NewImage.task_uuid?.S === uuid,
      );
      if (found) return { streamArn, shardId, sequence: found.dynamodb?.SequenceNumber as string };
      if (!page.Records?.length) break;
      iterator = page.NextShardIterator;
    }
  }
  throw new Error(`no stream record for ${uuid}`);
}

const sqsEvent = (...bodies: string[]): SQSEvent =>
  ({ Records: bodies.map((body, i) => ({ messageId: `m${i}`, body })) }) as unknown as SQSEvent;

describe("events replay", () => {
  it("publishes again the events of a stream batch the relay gave up on", async () => {
    const { sqs, sns } = stack.clients;
    const queueUrl = await subscribedQueue(stack.clients, stack.resources.topicArn, ["task.created"]);
    const later = new Date(Date.now() + 3600_000).toISOString();
    const res = await stack.call("POST", "/v2/tasks", {
      body: { tool: "claude", prompt: "x", scheduled_at: later },
    });
    const uuid = res.json?.data.uuid as string;
    // The relay published it once already.
    const first = await receiveFirst(sqs, queueUrl);
    expect(JSON.parse(first[0]?.Body ?? "{}")).toMatchObject({ type: "task.created", task_uuid: uuid });

    const { streamArn, shardId, sequence } = await eventRecordOf(uuid);
    const failure = JSON.stringify({
      version: "1.0",
      DDBStreamBatchInfo: {
        streamArn,
        shardId,
        startSequenceNumber: sequence,
        endSequenceNumber: sequence,
        batchSize: 1,
      },
    });
    const replay = replayHandler(
      (batch) => readStreamBatch(streams, batch),
      new SnsEventBus(sns, stack.resources.topicArn),
    );
    const result = await replay(sqsEvent(failure, "not a failure record"));
    expect(result).toEqual({ batchItemFailures: [], published: 1 });
    const again = await receiveFirst(sqs, queueUrl);
    expect(JSON.parse(again[0]?.Body ?? "{}")).toEqual(JSON.parse(first[0]?.Body ?? "{}"));
  });

  it("leaves a batch it cannot read on the queue, to be tried again", async () => {
    const replay = replayHandler(async () => {
      throw new Error("TrimmedDataAccessException");
    }, new SnsEventBus(stack.clients.sns, stack.resources.topicArn));
    const failure = JSON.stringify({
      DDBStreamBatchInfo: {
        streamArn: "arn",
        shardId: "s",
        startSequenceNumber: "1",
        endSequenceNumber: "2",
      },
    });
    expect(await replay(sqsEvent(failure))).toEqual({
      batchItemFailures: [{ itemIdentifier: "m0" }],
      published: 0,
    });
  });
});
