import { Duration } from "aws-cdk-lib";
import type { Function as LambdaFunction } from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { type ITopic, SubscriptionFilter } from "aws-cdk-lib/aws-sns";
import { SqsSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { QUEUE_SETTINGS } from "../../core/names.ts";
import { queueDefaults } from "../secure-defaults.ts";

export interface EventQueueProps {
  /** The events topic. */
  readonly topic: ITopic;
  /** The events the queue takes, by message attribute (core/events.ts). */
  readonly filterPolicy: Readonly<Record<string, readonly string[]>>;
  /** The function it feeds: functions/callbacks.ts, functions/workflows.ts. */
  readonly handler: LambdaFunction;
}

/**
 * An SQS queue subscribed to the events topic, raw (the body is the event JSON), for the events its filter
 * policy matches, feeding a function that reports partial batch failures; after its maxReceiveCount SQS
 * moves a message to the dead-letter queue. The callbacks' (run ends of tasks with a callback URL) and the
 * workflows' (starts and ends of node tasks).
 */
export class EventQueue extends Construct {
  readonly queue: Queue;
  readonly dlq: Queue;

  constructor(scope: Construct, id: string, { topic, filterPolicy, handler }: EventQueueProps) {
    super(scope, id);
    this.dlq = new Queue(this, "Dlq", {
      ...queueDefaults,
      retentionPeriod: Duration.seconds(QUEUE_SETTINGS.deadLetterRetentionSeconds),
    });
    this.queue = new Queue(this, "Queue", {
      ...queueDefaults,
      visibilityTimeout: Duration.seconds(QUEUE_SETTINGS.eventQueue.visibilitySeconds),
      deadLetterQueue: { queue: this.dlq, maxReceiveCount: QUEUE_SETTINGS.eventQueue.maxReceiveCount },
    });
    topic.addSubscription(
      new SqsSubscription(this.queue, {
        rawMessageDelivery: true,
        filterPolicy: Object.fromEntries(
          Object.entries(filterPolicy).map(([name, values]) => [
            name,
            SubscriptionFilter.stringFilter({ allowlist: [...values] }),
          ]),
        ),
      }),
    );
    handler.addEventSource(new SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true }));
  }
}
