import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { WorkflowQueue } from "../../core/ports.ts";
import type { WorkflowQueueMessage } from "../../core/workflow-queue.ts";

/** The workflows function's SQS queue (the one the topic feeds it events on). */
export class SqsWorkflowQueue implements WorkflowQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(message: WorkflowQueueMessage, delaySeconds = 0): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(message),
        ...(delaySeconds > 0 && { DelaySeconds: delaySeconds }),
      }),
    );
  }
}
