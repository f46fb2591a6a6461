import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { StreamConnections } from "../../core/ports.ts";
import { wakeBody } from "../../core/run-stream.ts";

/** A stream connection that opens asks the workflows function, through its queue, for what it missed. */
export const sqsStreamWake =
  (sqs: SQSClient, queueUrl: string): StreamConnections["wake"] =>
  async (runId, connectionId) => {
    await sqs.send(
      new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: wakeBody(runId, connectionId) }),
    );
  };
