import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { parseEventMessage } from "../core/callbacks.ts";
import type { Deps } from "../core/deps.ts";
import { pushRunStream, wakeOf } from "../core/run-stream.ts";
import { onWorkflowEvent } from "../core/workflow-runs.ts";
import { lambdaDeps } from "./_shared/composition.ts";
import { observability } from "./_shared/observability.ts";

const { logger, count, middlewares } = observability("switchyard-workflows");

/**
 * The SQS-triggered workflows function: runs stored, and the starts and ends of their nodes' tasks (its
 * queue's filter policy), move the runs on (core/workflow-runs.ts); a stream connection that opens has
 * its run's messages pushed to it (core/run-stream.ts). One record after another, so that the events of one
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
          const wake = wakeOf(record.body);
          if (wake) await pushRunStream(deps, wake.run_id, wake.connection_id);
          else await onWorkflowEvent(deps, parseEventMessage(record.body));
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
