import type { WorkflowQueue } from "../../core/ports.ts";
import type { WorkflowQueueMessage } from "../../core/workflow-queue.ts";

/** The workflows function's queue in memory: what was sent, with its delay. */
export class MemoryWorkflowQueue implements WorkflowQueue {
  readonly sent: { message: WorkflowQueueMessage; delaySeconds: number }[] = [];

  async send(message: WorkflowQueueMessage, delaySeconds = 0): Promise<void> {
    this.sent.push({ message, delaySeconds });
  }
}
