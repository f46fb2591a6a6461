import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { poolNotFound } from "../../core/errors.ts";
import type { PoolQueue, QueueMessage } from "../../core/ports.ts";

/** The per-pool SQS FIFO queues. */
export class SqsPoolQueue implements PoolQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrls: Readonly<Record<string, string>>,
  ) {}

  private url(pool: string): string {
    const url = this.queueUrls[pool];
    if (!url) throw poolNotFound(pool);
    return url;
  }

  /** Reads one queue's attributes: proves the endpoint answers and the queue exists. */
  async ping(): Promise<void> {
    const [first] = Object.values(this.queueUrls);
    if (first)
      await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: first, AttributeNames: ["QueueArn"] }));
  }

  async send(pool: string, message: { body: string; dedupId: string; groupId: string }): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.url(pool),
        MessageBody: message.body,
        MessageDeduplicationId: message.dedupId,
        MessageGroupId: message.groupId,
      }),
    );
  }

  async receive(pool: string, max: number, waitSeconds: number): Promise<QueueMessage[]> {
    const out = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.url(pool),
        MaxNumberOfMessages: Math.min(10, Math.max(1, max)),
        WaitTimeSeconds: waitSeconds,
      }),
    );
    return (out.Messages ?? []).flatMap((m) =>
      m.ReceiptHandle && m.Body !== undefined ? [{ receiptHandle: m.ReceiptHandle, body: m.Body }] : [],
    );
  }

  async delete(pool: string, receiptHandle: string): Promise<void> {
    await this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.url(pool), ReceiptHandle: receiptHandle }));
  }

  async extendVisibility(pool: string, receiptHandle: string, seconds: number): Promise<void> {
    await this.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.url(pool),
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  }
}
