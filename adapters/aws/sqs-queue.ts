import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { poolNotFound } from "../../core/errors.ts";
import type { PoolQueue, QueueMessage } from "../../core/ports.ts";

/** Messages per SQS batch request, at most. */
const SQS_BATCH = 10;

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

  /** One DeleteMessage, or DeleteMessageBatch calls of up to 10 (SQS's batch size). */
  async delete(pool: string, receiptHandles: string[]): Promise<void> {
    const QueueUrl = this.url(pool);
    if (receiptHandles.length === 1) {
      await this.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: receiptHandles[0] }));
      return;
    }
    for (let i = 0; i < receiptHandles.length; i += SQS_BATCH) {
      const batch = receiptHandles.slice(i, i + SQS_BATCH);
      const out = await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl,
          Entries: batch.map((ReceiptHandle, n) => ({ Id: String(n), ReceiptHandle })),
        }),
      );
      if (out.Failed?.length) {
        const reasons = out.Failed.map((f) => `${f.Code}: ${f.Message ?? ""}`).join("; ");
        throw new Error(`${out.Failed.length} of ${batch.length} messages were not deleted (${reasons})`);
      }
    }
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
