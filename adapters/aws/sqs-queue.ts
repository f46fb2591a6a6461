import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
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

  /** Each pool's dead-letter queue URL, found from its queue's redrive policy once. */
  private readonly deadLetterUrls = new Map<string, Promise<string>>();

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

  /**
   * The dead-letter queue's depth (those someone is looking at too), and its oldest message's age: a look
   * at up to 10 of them, left visible (a dead-letter queue has no consumer whose receives this disturbs).
   */
  async deadLetters(pool: string): Promise<{ count: number; oldestAgeSeconds?: number }> {
    const url = await this.deadLetterUrl(pool);
    const { Attributes } = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    const count =
      Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    if (count === 0) return { count };
    const { Messages = [] } = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: SQS_BATCH,
        VisibilityTimeout: 0,
        MessageSystemAttributeNames: ["SentTimestamp"],
      }),
    );
    const sent = Messages.map((m) => Number(m.Attributes?.SentTimestamp)).filter(Number.isFinite);
    return sent.length === 0
      ? { count }
      : { count, oldestAgeSeconds: Math.round((Date.now() - Math.min(...sent)) / 1000) };
  }

  private deadLetterUrl(pool: string): Promise<string> {
    let url = this.deadLetterUrls.get(pool);
    if (!url) {
      url = this.findDeadLetterUrl(pool);
      // A failed look is looked at again next time.
      url.catch(() => this.deadLetterUrls.delete(pool));
      this.deadLetterUrls.set(pool, url);
    }
    return url;
  }

  private async findDeadLetterUrl(pool: string): Promise<string> {
    const { Attributes } = await this.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: this.url(pool), AttributeNames: ["RedrivePolicy"] }),
    );
    const arn = JSON.parse(Attributes?.RedrivePolicy ?? "{}").deadLetterTargetArn as string | undefined;
    if (!arn) throw new Error(`pool ${pool}: its queue has no dead-letter queue`);
    // arn:aws:sqs:<region>:<account>:<name>
    const [, , , , account, name] = arn.split(":");
    const { QueueUrl } = await this.sqs.send(
      new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }),
    );
    if (!QueueUrl) throw new Error(`pool ${pool}: no URL for its dead-letter queue ${name}`);
    return QueueUrl;
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
