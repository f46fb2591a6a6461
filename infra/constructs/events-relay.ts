import { Duration } from "aws-cdk-lib";
import type { ITableV2 } from "aws-cdk-lib/aws-dynamodb";
import { FilterCriteria, FilterRule, type IFunction, StartingPosition } from "aws-cdk-lib/aws-lambda";
import { DynamoEventSource, SqsDlq } from "aws-cdk-lib/aws-lambda-event-sources";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { NagSuppressions } from "cdk-nag";
import { Construct } from "constructs";
import { EVENT_SORT_KEY_PREFIX } from "../../core/names.ts";
import { queueDefaults } from "../secure-defaults.ts";

export interface EventsRelayProps {
  /** The table, with its stream on (NEW_IMAGE). */
  readonly table: ITableV2;
  /** functions/events-relay.ts: publishes each new event item to the events topic. */
  readonly handler: IFunction;
}

/**
 * The outbox relay: the table's stream feeds the relay function the event items as they are inserted.
 * Lambda filters the stream (inserted items whose sk begins with EVENT#), so tasks, runs and counters
 * never invoke it. A batch that keeps failing is split, retried, then recorded in the Failures queue.
 * Publishing is at least once: a retried batch publishes again, and each event has a unique id.
 */
export class EventsRelay extends Construct {
  /** Metadata of stream batches the relay gave up on (alarmed as a dead-letter queue). */
  readonly failures: Queue;

  constructor(scope: Construct, id: string, { table, handler }: EventsRelayProps) {
    super(scope, id);
    this.failures = new Queue(this, "Failures", { ...queueDefaults, retentionPeriod: Duration.days(14) });
    NagSuppressions.addResourceSuppressions(this.failures, [
      {
        id: "AwsSolutions-SQS3",
        reason:
          "This queue is itself a dead-letter destination: the on-failure destination of the stream event " +
          "source mapping (cdk-nag only recognizes redrive policies). Nothing consumes it automatically, so " +
          "it needs no DLQ of its own; its depth is alarmed.",
      },
    ]);
    handler.addEventSource(
      new DynamoEventSource(table, {
        // From the oldest record still in the stream (24 h): events written before the relay existed go out too.
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: 100,
        maxBatchingWindow: Duration.seconds(1),
        filters: [
          FilterCriteria.filter({
            eventName: FilterRule.isEqual("INSERT"),
            dynamodb: { NewImage: { sk: { S: FilterRule.beginsWith(EVENT_SORT_KEY_PREFIX) } } },
          }),
        ],
        bisectBatchOnError: true,
        retryAttempts: 10,
        onFailure: new SqsDlq(this.failures),
      }),
    );
  }
}
