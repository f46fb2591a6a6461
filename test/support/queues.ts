import { type SNSClient, SubscribeCommand } from "@aws-sdk/client-sns";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
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

/** A new queue subscribed to a topic, raw, for the events `types` names; returns its URL. */
export async function subscribedQueue(
  { sqs, sns }: { sqs: SQSClient; sns: SNSClient },
  topicArn: string,
  types: string[],
): Promise<string> {
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: `sub-${Date.now()}-${types.length}` }),
  );
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }),
  );
  await sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: "sqs",
      Endpoint: Attributes?.QueueArn,
      Attributes: { RawMessageDelivery: "true", FilterPolicy: JSON.stringify({ type: types }) },
    }),
  );
  return QueueUrl as string;
}
