import { Duration, Stack, type StackProps } from "aws-cdk-lib";
import type { ITableV2 } from "aws-cdk-lib/aws-dynamodb";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import { Topic } from "aws-cdk-lib/aws-sns";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import type { PoolConfig } from "../core/config.ts";
import { ENV } from "../core/names.ts";
import { ROUTE_GROUPS, type RouteGroup } from "../functions/_shared/routes.ts";
import { PoolQueues } from "./constructs/pool-queues.ts";
import { SchedulerApi } from "./constructs/scheduler-api.ts";
import { SwitchyardFunction } from "./constructs/switchyard-function.ts";
import { topicDefaults } from "./secure-defaults.ts";

const GRANT_WILDCARDS =
  "These wildcards come from grantReadWriteData and grantReadWrite on the one Switchyard table and bucket: " +
  "index/* is the table's GSIs, <bucket>/* its objects, and s3:GetObject* etc. are CDK's read/write action " +
  "groups. Nothing outside those two resources is granted.";
/** The findings those grants produce; the regexes match the stateful Table and Artifacts ARNs only. */
const GRANT_WILDCARD_FINDINGS = [
  ...["GetObject*", "GetBucket*", "List*", "DeleteObject*", "Abort*"].map((action) => `Action::s3:${action}`),
  { regex: "/^Resource::.*Table.*\\/index\\/\\*$/" },
  { regex: "/^Resource::.*Artifacts.*\\/\\*$/" },
];

export interface StatelessStackProps extends StackProps {
  readonly table: ITableV2;
  readonly bucket: IBucket;
  readonly adminKey: ISecret;
  readonly pools: readonly PoolConfig[];
  /** The scheduler config file the pools came from; bundled into every function. */
  readonly configFile: string;
}

/** Everything that can be replaced freely: queues, topic, functions, API and the tick schedule. */
export class StatelessStack extends Stack {
  readonly api: SchedulerApi;
  readonly queues: PoolQueues;
  readonly topic: Topic;
  readonly handlers: Readonly<Record<RouteGroup, SwitchyardFunction>>;
  readonly tick: SwitchyardFunction;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { table, bucket, adminKey, pools, configFile } = props;

    this.queues = new PoolQueues(this, "Pools", { pools });
    this.topic = new Topic(this, "Events", topicDefaults);

    const environment = {
      [ENV.tableName]: table.tableName,
      [ENV.bucketName]: bucket.bucketName,
      [ENV.topicArn]: this.topic.topicArn,
      [ENV.queueUrls]: this.toJsonString(
        Object.fromEntries([...this.queues.queues].map(([pool, queue]) => [pool, queue.queueUrl])),
      ),
    };
    const newFunction = (id: string, entry: string, timeout?: Duration) => {
      const fn = new SwitchyardFunction(this, id, { entry, configFile, environment, timeout });
      table.grantReadWriteData(fn);
      bucket.grantReadWrite(fn);
      this.topic.grantPublish(fn);
      for (const queue of this.queues.queues.values()) queue.grantSendMessages(fn);
      NagSuppressions.addResourceSuppressions(
        fn,
        [{ id: "AwsSolutions-IAM5", reason: GRANT_WILDCARDS, appliesTo: GRANT_WILDCARD_FINDINGS }],
        true,
      );
      return fn;
    };

    this.handlers = Object.fromEntries(
      ROUTE_GROUPS.map((group) => {
        const fn = newFunction(`Api-${group}`, `functions/api/${group}.ts`);
        fn.addEnvironment(ENV.adminKeySecret, adminKey.secretArn);
        adminKey.grantRead(fn);
        return [group, fn];
      }),
    ) as Record<RouteGroup, SwitchyardFunction>;
    this.api = new SchedulerApi(this, "Http", { handlers: this.handlers });

    // The tick: due tasks, expired leases, pool pumps. A missed tick only delays work, so no retries.
    this.tick = newFunction("Tick", "functions/tick.ts", Duration.seconds(55));
    new Rule(this, "TickSchedule", {
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(this.tick, { retryAttempts: 0 })],
    });
  }
}
