import { PublishBatchCommand, type SNSClient } from "@aws-sdk/client-sns";
import { type DomainEvent, eventAttributes } from "../../core/events.ts";
import type { EventBus } from "../../core/ports.ts";

/** SNS takes at most 10 messages per PublishBatch. */
const BATCH = 10;

/** Publishes events to the topic in batches, with the attributes subscribers filter on. */
export class SnsEventBus implements EventBus {
  constructor(
    private readonly sns: SNSClient,
    private readonly topicArn: string,
  ) {}

  async publish(events: DomainEvent[]): Promise<void> {
    for (let start = 0; start < events.length; start += BATCH) {
      const batch = events.slice(start, start + BATCH);
      const out = await this.sns.send(
        new PublishBatchCommand({
          TopicArn: this.topicArn,
          PublishBatchRequestEntries: batch.map((event, i) => ({
            Id: String(i),
            Message: JSON.stringify(event),
            MessageAttributes: Object.fromEntries(
              Object.entries(eventAttributes(event)).map(([name, value]) => [
                name,
                { DataType: "String", StringValue: value },
              ]),
            ),
          })),
        }),
      );
      if (out.Failed?.length)
        throw new Error(`SNS refused ${out.Failed.length} events: ${out.Failed[0]?.Message}`);
    }
  }
}
