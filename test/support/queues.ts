import { type Message, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { expect } from "vitest";
import type { CallbackDelivery } from "../../core/records.ts";
import { waitFor } from "./wait.ts";

/** Long-polls a queue until a batch holds messages `wanted` takes (attributes included); returns those. */
export const receiveFirst = (
  sqs: SQSClient,
  queueUrl: string,
  { wanted = () => true, ms }: { wanted?: (message: Message) => boolean; ms?: number } = {},
) =>
  waitFor(
    async () => {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageAttributeNames: ["All"],
        }),
      );
      return Messages.filter(wanted);
    },
    (messages) => messages.length > 0,
    ms,
  );

/** A callback given up on, as its task records it: four retries, then failed, naming the dead-letter queue. */
export function expectDeadLettered(deliveries: CallbackDelivery[]) {
  expect(deliveries.map((d) => [d.attempt, d.outcome])).toEqual([
    [1, "retry"],
    [2, "retry"],
    [3, "retry"],
    [4, "retry"],
    [5, "failed"],
  ]);
  expect(deliveries[4]?.error).toMatch(/ECONNREFUSED.*dead-letter queue/);
}
