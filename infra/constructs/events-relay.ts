import { Duration } from "aws-cdk-lib";
import type { ITableV2 } from "aws-cdk-lib/aws-dynamodb";
import { FilterCriteria, FilterRule, type IFunction, StartingPosition } from "aws-cdk-lib/aws-lambda";
import { DynamoEventSource, SqsDlq, SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { NagSuppressions } from "cdk-nag";
import { Construct } from "constructs";
import { EVENT_SORT_KEY_PREFIX } from "../../core/names.ts";
import { queueDefaults } from "../secure-defaults.ts";

/** The replay function's timeout (stateless-stack.ts gives it this). */
export const REPLAY_TIMEOUT_SECONDS = 60;

export interface EventsRelayProps {
  /** The table, with its stream on (NEW_IMAGE). */
  readonly table: ITableV2;
  /** functions/events-relay.ts: publishes each new event item to the events topic. */
  readonly handler: IFunction;
  /** functions/events-replay.ts: reads again, from the stream, a batch the relay gave up on, and publishes it. */
  readonly replay: IFunction;
}

/**
 * The outbox relay: the table's stream feeds the relay function the event items as they are inserted.
 * Lambda filters the stream (inserted items whose sk begins with EVENT#), so tasks, runs and counters
 * never invoke it. A batch that keeps failing is split, retried, then recorded in the Failures queue,
 * whose replay function reads the batch again from the stream (kept 24 hours) and publishes it; what it
 * cannot replay after five tries lands in the Unreplayed queue (alarmed). Publishing is at least once: a
 * retried batch publishes again, and each event has a unique id.
 */
export class EventsRelay extends Construct {
  /** Where in the stream the batches the relay gave up on lie: the replay function's queue. */
  readonly failures: Queue;
  /** Failure records the replay could not replay either (alarmed as a dead-letter queue). */
  readonly unreplayed: Queue;

  constructor(scope: Construct, id: string, { table, handler, replay }: EventsRelayProps) {
    super(scope, id);
    this.unreplayed = new Queue(this, "Unreplayed", { ...queueDefaults, retentionPeriod: Duration.days(14) });
    NagSuppressions.addResourceSuppressions(this.unreplayed, [
      {
        id: "AwsSolutions-SQS3",
        reason:
          "This queue is itself the dead-letter queue of the replay's queue. Nothing consumes it " +
          "automatically, so it needs no DLQ of its own; its depth is alarmed.",
      },
    ]);
    this.failures = new Queue(this, "Failures", {
      ...queueDefaults,
      retentionPeriod: Duration.days(1),
      // Six times the replay's timeout, as Lambda advises for an SQS event source.
      visibilityTimeout: Duration.seconds(6 * REPLAY_TIMEOUT_SECONDS),
      deadLetterQueue: { queue: this.unreplayed, maxReceiveCount: 5 },
    });
    replay.addEventSource(new SqsEventSource(this.failures, { batchSize: 1, reportBatchItemFailures: true }));
    table.grantStreamRead(replay);
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
