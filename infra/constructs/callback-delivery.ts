import { Duration } from "aws-cdk-lib";
import type { Function as LambdaFunction } from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { type ITopic, SubscriptionFilter } from "aws-cdk-lib/aws-sns";
import { SqsSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { CALLBACK_FILTER_POLICY } from "../../core/events.ts";
import { QUEUE_SETTINGS } from "../../core/names.ts";
import { queueDefaults } from "../secure-defaults.ts";

export interface CallbackDeliveryProps {
  /** The events topic. */
  readonly topic: ITopic;
  /** functions/callbacks.ts: POSTs the HMAC-signed callback of each run-end event. */
  readonly handler: LambdaFunction;
}

/**
 * Callback delivery: an SQS queue subscribed to the events topic, raw (the body is the event JSON), and
 * only for run-end events (message attribute `type`), feeding the callbacks function. The function reports
 * partial batch failures and delays a failed message itself (exponential backoff); after
 * its maxReceiveCount SQS moves it to the dead-letter queue.
 */
export class CallbackDelivery extends Construct {
  readonly queue: Queue;
  readonly dlq: Queue;

  constructor(scope: Construct, id: string, { topic, handler }: CallbackDeliveryProps) {
    super(scope, id);
    this.dlq = new Queue(this, "Dlq", {
      ...queueDefaults,
      retentionPeriod: Duration.seconds(QUEUE_SETTINGS.deadLetterRetentionSeconds),
    });
    this.queue = new Queue(this, "Queue", {
      ...queueDefaults,
      visibilityTimeout: Duration.seconds(QUEUE_SETTINGS.callback.visibilitySeconds),
      deadLetterQueue: { queue: this.dlq, maxReceiveCount: QUEUE_SETTINGS.callback.maxReceiveCount },
    });
    topic.addSubscription(
      new SqsSubscription(this.queue, {
        rawMessageDelivery: true,
        filterPolicy: Object.fromEntries(
          Object.entries(CALLBACK_FILTER_POLICY).map(([name, values]) => [
            name,
            SubscriptionFilter.stringFilter({ allowlist: [...values] }),
          ]),
        ),
      }),
    );
    handler.addEventSource(new SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true }));
  }
}
