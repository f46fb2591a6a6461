import { CfnOutput, Duration, Stack } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, Metric, Stats, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { Topic } from "aws-cdk-lib/aws-sns";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { METRICS_NAMESPACE, topicDefaults } from "../secure-defaults.ts";

export interface AlarmsProps {
  /** Pool name -> its work queue: alarmed on the age of its oldest message. */
  readonly queues: ReadonlyMap<string, IQueue>;
  /** A name -> a dead-letter queue: alarmed as soon as it holds a message. */
  readonly deadLetterQueues: ReadonlyMap<string, IQueue>;
  /** A name -> a function: alarmed on any error. */
  readonly functions: ReadonlyMap<string, IFunction>;
  /**
   * Alarm when the oldest message of a pool queue is older than this: an admitted run no worker took.
   * It covers a scale-out from zero after a long idle time (SQS metrics of an inactive queue can lag up
   * to 15 minutes), a Fargate start and an image pull. @default 15 minutes
   */
  readonly oldestMessageAge?: Duration;
}

/**
 * CloudWatch alarms on what needs a human: dead letters, work no worker takes, function errors.
 * Every alarm notifies the Alarms topic (output AlarmTopicArn); subscribe an email or a chat hook to it.
 */
export class Alarms extends Construct {
  readonly topic: Topic;
  /** Alarm id (e.g. `Dlq-claude-main`) -> alarm. */
  readonly alarms: ReadonlyMap<string, Alarm>;

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    this.topic = new Topic(this, "Topic", topicDefaults);
    // The topic policy (TLS only) replaces SNS's default one, which is what lets CloudWatch publish:
    // allow CloudWatch back in, for this account's alarms only.
    this.topic.grantPublish(
      new ServicePrincipal("cloudwatch.amazonaws.com").withConditions({
        StringEquals: { "aws:SourceAccount": Stack.of(this).account },
      }),
    );
    new CfnOutput(Stack.of(this), "AlarmTopicArn", {
      description: "SNS topic of the Switchyard alarms: subscribe to it to be notified",
      value: this.topic.topicArn,
    });
    const action = new SnsAction(this.topic);
    const alarms = new Map<string, Alarm>();
    const add = (alarmId: string, alarm: Alarm) => {
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
      alarms.set(alarmId, alarm);
    };
    const period = Duration.minutes(5);
    const common = {
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
    };

    for (const [name, dlq] of props.deadLetterQueues) {
      add(
        `Dlq-${name}`,
        new Alarm(this, `Dlq-${name}`, {
          ...common,
          alarmDescription: `${name}: messages in the dead-letter queue (redrive them once the cause is fixed)`,
          metric: dlq.metricApproximateNumberOfMessagesVisible({ period, statistic: Stats.MAXIMUM }),
          threshold: 0,
        }),
      );
    }

    const maxAge = props.oldestMessageAge ?? Duration.minutes(15);
    for (const [pool, queue] of props.queues) {
      add(
        `OldestMessage-${pool}`,
        new Alarm(this, `OldestMessage-${pool}`, {
          ...common,
          alarmDescription:
            `Pool ${pool}: an admitted run waited over ${maxAge.toHumanString()} for a worker ` +
            "(service at its max, failing to start, or missing credentials)",
          metric: queue.metricApproximateAgeOfOldestMessage({ period, statistic: Stats.MAXIMUM }),
          threshold: maxAge.toSeconds(),
        }),
      );
    }

    // Every pool's, since an SLA is runtime configuration (a reload may give a pool one): the tick
    // publishes SlaMissed only for pools that have one; no data is no miss.
    for (const pool of props.queues.keys()) {
      add(
        `Sla-${pool}`,
        new Alarm(this, `Sla-${pool}`, {
          ...common,
          evaluationPeriods: 3,
          alarmDescription: `Pool ${pool}: its recent waits missed its SLA for 3 minutes (GET /v2/slas)`,
          metric: new Metric({
            namespace: METRICS_NAMESPACE,
            metricName: "SlaMissed",
            dimensionsMap: { Pool: pool, service: "switchyard-tick" },
            period: Duration.minutes(1),
            statistic: Stats.MAXIMUM,
          }),
          threshold: 0,
        }),
      );
    }

    for (const [name, fn] of props.functions) {
      add(
        `Errors-${name}`,
        new Alarm(this, `Errors-${name}`, {
          ...common,
          alarmDescription: `Function ${name}: invocations ended in an error`,
          metric: fn.metricErrors({ period, statistic: Stats.SUM }),
          threshold: 0,
        }),
      );
    }
    this.alarms = alarms;
  }
}
