import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { parseEventMessage } from "../core/callbacks.ts";
import type { Deps } from "../core/deps.ts";
import { pushRunStream } from "../core/run-stream.ts";
import { workflowQueueMessageOf } from "../core/workflow-queue.ts";
import { onWorkflowEvent, retryNode } from "../core/workflow-runs.ts";
import { lambdaDeps } from "./_shared/composition.ts";
import { observability } from "./_shared/observability.ts";

const { logger, count, middlewares } = observability("switchyard-workflows");

/**
 * The SQS-triggered workflows function: runs stored, and the starts and ends of their nodes' tasks (its
 * queue's filter policy), move the runs on (core/workflow-runs.ts); what it is asked on the same queue
 * (core/workflow-queue.ts): a stream connection that opens is pushed its run's messages, a node that
 * waits for its tenant's quota is looked at again. One record after another, so that the events of one
 * batch do not race each other; a record that fails comes back (partial batch response) and, after its
 * queue's maxReceiveCount, goes to the dead-letter queue. The local stack calls the same handler.
 */
export function workflowsHandler(getDeps: () => Promise<Deps>) {
  return middy<SQSEvent, SQSBatchResponse, Error, Context>()
    .use(middlewares)
    .handler(async (event) => {
      const deps = await getDeps();
      const failed: { itemIdentifier: string }[] = [];
      for (const record of event.Records) {
        try {
          const asked = workflowQueueMessageOf(record.body);
          if (!asked) await onWorkflowEvent(deps, parseEventMessage(record.body));
          else if ("stream_wake" in asked) {
            await pushRunStream(deps, asked.stream_wake.run_id, asked.stream_wake.connection_id);
          } else await retryNode(deps, asked.node_retry);
        } catch (err) {
          logger.error("workflow event failed", { messageId: record.messageId, error: String(err) });
          failed.push({ itemIdentifier: record.messageId });
        }
      }
      count({
        WorkflowEventsDone: event.Records.length - failed.length,
        WorkflowEventsRetried: failed.length,
      });
      return { batchItemFailures: failed };
    });
}

export const handler = workflowsHandler(() => lambdaDeps());
