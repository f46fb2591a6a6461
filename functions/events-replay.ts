import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import middy from "@middy/core";
import type { DynamoDBStreamEvent, SQSBatchResponse, SQSEvent } from "aws-lambda";
import * as z from "zod";
import { readStreamBatch, type StreamBatchInfo } from "../adapters/aws/stream-replay.ts";
import type { EventBus } from "../core/ports.ts";
import { eventBusFromEnv } from "../runtime/composition.ts";
import { lambdaClients } from "./_shared/composition.ts";
import { logger } from "./_shared/http.ts";
import { observability, tracer } from "./_shared/observability.ts";
import { eventsOfStream } from "./events-relay.ts";

const { count, middlewares } = observability("switchyard-events-replay");

/** What Lambda writes to the relay's failure queue for a stream batch it gave up on. */
const failureRecord = z.object({
  DDBStreamBatchInfo: z.object({
    streamArn: z.string(),
    shardId: z.string(),
    startSequenceNumber: z.string(),
    endSequenceNumber: z.string(),
  }),
});

function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The relay's second chance: for each stream batch the relay gave up on, its records are read again from
 * the stream and their events published. A batch that cannot be replayed now stays on the queue and is
 * tried again; after five tries it goes to the dead-letter queue, which is alarmed. Events are published
 * at least once; each has a unique id.
 */
export function replayHandler(
  read: (batch: StreamBatchInfo) => ReturnType<typeof readStreamBatch>,
  bus: EventBus,
) {
  return async (queue: SQSEvent): Promise<SQSBatchResponse & { published: number }> => {
    const batchItemFailures: SQSBatchResponse["batchItemFailures"] = [];
    let published = 0;
    for (const message of queue.Records) {
      const parsed = failureRecord.safeParse(jsonOrUndefined(message.body));
      if (!parsed.success) {
        // Not a stream batch's failure record: nothing to replay, and it would only come back.
        logger.warn("dropped a message that is not a stream failure record", {
          body: message.body.slice(0, 200),
        });
        continue;
      }
      try {
        const records = await read(parsed.data.DDBStreamBatchInfo);
        const events = eventsOfStream({ Records: records } as unknown as DynamoDBStreamEvent);
        if (events.length) await bus.publish(events);
        published += events.length;
      } catch (err) {
        logger.error("replay failed; the message comes back", { error: String(err) });
        batchItemFailures.push({ itemIdentifier: message.messageId });
      }
    }
    return { batchItemFailures, published };
  };
}

let replay: ReturnType<typeof replayHandler> | undefined;

export const handler = middy<SQSEvent>()
  .use(middlewares)
  .handler(async (queue) => {
    if (!replay) {
      const streams = tracer.captureAWSv3Client(new DynamoDBStreamsClient({}));
      replay = replayHandler((batch) => readStreamBatch(streams, batch), eventBusFromEnv(lambdaClients()));
    }
    const result = await replay(queue);
    count({ EventsReplayed: result.published });
    return { batchItemFailures: result.batchItemFailures };
  });
