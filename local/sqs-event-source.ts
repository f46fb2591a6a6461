import { randomUUID } from "node:crypto";
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from "aws-lambda";
import type { Deps } from "../core/deps.ts";

type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>;

export interface SqsEventSourceOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  region: string;
  /** The function's name, as its context gives it. */
  functionName: string;
  /** The function's handler (functions/callbacks.ts, functions/pod-launcher.ts), called as Lambda would. */
  handler: SqsHandler;
  log: Deps["log"];
}

/** A function's invocation context, as Lambda hands it over. */
export const lambdaContext = (functionName: string): Context =>
  ({
    functionName,
    functionVersion: "$LATEST",
    awsRequestId: randomUUID(),
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: "256",
    getRemainingTimeInMillis: () => 60_000,
  }) as Context;

/** An SQS message as the Lambda event source mapping hands it to the function. */
function toRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const system = message.Attributes ?? {};
  const attributes: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    attributes[name] = {
      dataType: value.DataType ?? "String",
      stringValue: value.StringValue,
      stringListValues: [],
      binaryListValues: [],
    };
  }
  return {
    messageId: message.MessageId ?? "",
    receiptHandle: message.ReceiptHandle ?? "",
    body: message.Body ?? "",
    attributes: {
      ApproximateReceiveCount: system.ApproximateReceiveCount ?? "1",
      SentTimestamp: system.SentTimestamp ?? String(Date.now()),
      SenderId: system.SenderId ?? "local",
      ApproximateFirstReceiveTimestamp: system.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: attributes,
    md5OfBody: message.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/**
 * Locally, what Lambda's SQS event source mapping does on AWS: long-polls a queue, calls the function's
 * handler with each batch, and deletes the messages it did not report as failures. Failed ones stay for
 * SQS to redeliver (after their visibility timeout, or the delay the handler set) or to move to the DLQ.
 */
export function startSqsEventSource(options: SqsEventSourceOptions): { stop(): Promise<void> } {
  const { sqs, queueUrl, handler, log, functionName } = options;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
          }),
        );
        if (Messages.length === 0) continue;
        const records = Messages.map((m) => toRecord(m, options.queueArn, options.region));
        const response = await handler({ Records: records }, lambdaContext(functionName));
        const failed = new Set(response?.batchItemFailures.map((f) => f.itemIdentifier));
        const done = records.filter((r) => !failed.has(r.messageId));
        if (done.length > 0) {
          await sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
            }),
          );
        }
      } catch (err) {
        // As on AWS, a batch whose handler threw is redelivered whole after its visibility timeout.
        log.error("event source: the batch failed", { function: functionName, error: String(err) });
        await new Promise((done) => setTimeout(done, 1000));
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}
