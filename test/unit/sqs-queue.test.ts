import {
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { describe, expect, it } from "vitest";
import { SqsPoolQueue } from "../../adapters/aws/sqs-queue.ts";

const URL = "https://sqs.us-east-1.amazonaws.com/1/p.fifo";

describe("SqsPoolQueue deletes", () => {
  it("deletes one message with DeleteMessage, and many in batches of 10", async () => {
    const sqs = mockClient(SQSClient);
    sqs.on(DeleteMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    const queue = new SqsPoolQueue(new SQSClient({ region: "us-east-1" }), { p: URL });
    await queue.delete("p", ["h0"]);
    await queue.delete(
      "p",
      Array.from({ length: 12 }, (_, i) => `h${i}`),
    );
    expect(sqs.commandCalls(DeleteMessageCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: URL, ReceiptHandle: "h0" },
    ]);
    const batches = sqs.commandCalls(DeleteMessageBatchCommand).map((c) => c.args[0].input);
    expect(batches.map((b) => b.Entries?.map((e) => e.ReceiptHandle))).toEqual([
      ["h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"],
      ["h10", "h11"],
    ]);
    expect(
      batches.every(
        (b) => b.QueueUrl === URL && new Set(b.Entries?.map((e) => e.Id)).size === b.Entries?.length,
      ),
    ).toBe(true);
    sqs.restore();
  });

  it("rejects when SQS says some messages of a batch were not deleted", async () => {
    const sqs = mockClient(SQSClient);
    sqs.on(DeleteMessageBatchCommand).resolves({
      Successful: [{ Id: "0" }],
      Failed: [{ Id: "1", Code: "ReceiptHandleIsInvalid", SenderFault: true, Message: "gone" }],
    });
    const queue = new SqsPoolQueue(new SQSClient({ region: "us-east-1" }), { p: URL });
    await expect(queue.delete("p", ["a", "b"])).rejects.toThrow(
      /1 of 2 messages were not deleted.*ReceiptHandleIsInvalid/,
    );
    sqs.restore();
  });
});

describe("SqsPoolQueue dead letters", () => {
  it("finds the pool's dead-letter queue from its redrive policy once, counts it and peeks at it", async () => {
    const sqs = mockClient(SQSClient);
    const dlqUrl = "https://sqs.us-east-1.amazonaws.com/1/p-dlq.fifo";
    const redrive = { deadLetterTargetArn: "arn:aws:sqs:us-east-1:1:p-dlq.fifo", maxReceiveCount: 5 };
    sqs
      .on(GetQueueAttributesCommand, { QueueUrl: URL })
      .resolves({ Attributes: { RedrivePolicy: JSON.stringify(redrive) } })
      .on(GetQueueAttributesCommand, { QueueUrl: dlqUrl })
      .resolves({
        Attributes: { ApproximateNumberOfMessages: "2", ApproximateNumberOfMessagesNotVisible: "1" },
      })
      .on(GetQueueUrlCommand)
      .resolves({ QueueUrl: dlqUrl })
      .on(ReceiveMessageCommand)
      .resolves({ Messages: [{ Attributes: { SentTimestamp: String(Date.now() - 90_000) } }] });
    const queue = new SqsPoolQueue(new SQSClient({ region: "us-east-1" }), { p: URL });
    expect(await queue.deadLetters("p")).toEqual({ count: 3, oldestAgeSeconds: 90 });
    await queue.deadLetters("p");
    expect(sqs.commandCalls(GetQueueUrlCommand).map((c) => c.args[0].input)).toEqual([
      { QueueName: "p-dlq.fifo", QueueOwnerAWSAccountId: "1" },
    ]);
    expect(sqs.commandCalls(ReceiveMessageCommand)[0]?.args[0].input).toEqual({
      QueueUrl: dlqUrl,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
      MessageSystemAttributeNames: ["SentTimestamp"],
    });
    sqs.restore();
  });
});
