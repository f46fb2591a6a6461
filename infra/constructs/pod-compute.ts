import { ArnFormat, Duration, Stack } from "aws-cdk-lib";
import { SecurityGroup, type Vpc } from "aws-cdk-lib/aws-ec2";
import type { Cluster } from "aws-cdk-lib/aws-ecs";
import { Match, Rule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { Function as LambdaFunctionResource } from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { LogGroup } from "aws-cdk-lib/aws-logs";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { NagSuppressions } from "cdk-nag";
import { Construct } from "constructs";
import type { PodSettings } from "../../adapters/aws/pod-settings.ts";
import type { PoolConfig } from "../../core/config.ts";
import { QUEUE_SETTINGS } from "../../core/names.ts";
import { LOG_RETENTION, queueDefaults } from "../secure-defaults.ts";
import { tasksOf } from "./worker-network.ts";

export interface PodComputeProps {
  /** The container pools. */
  readonly pools: readonly PoolConfig[];
  /** Pool name -> its work queue. */
  readonly queues: ReadonlyMap<string, Queue>;
  readonly vpc: Vpc;
  /** The workers' cluster: pods run in it too. */
  readonly cluster: Cluster;
  /** functions/pod-launcher.ts: takes the container pools' dispatches and starts their pods. */
  readonly launcher: LambdaFunctionResource;
  /** functions/pod-events.ts: settles a pod's run when its ECS task stops. */
  readonly events: LambdaFunctionResource;
}

/**
 * Pods on Fargate for the container pools: a log group per pool, the pods' roles, their security group,
 * the launcher on the pools' queues, and the EventBridge rule that brings each stopped pod to its settle.
 * Task definitions are registered at run time, one per (pool, image, entry point, size): a pod's image is
 * the template's, known only when a task is submitted.
 */
export class PodCompute extends Construct {
  /** Pool name -> the log group its pods log to. */
  readonly logGroups: ReadonlyMap<string, LogGroup>;
  /** What the ECS agent uses to start a pod: pull its image, write its log. */
  readonly executionRole: Role;
  /** The pods' own role: it grants them nothing of Switchyard's. */
  readonly taskRole: Role;
  /** Stopped pods whose settle failed after EventBridge's retries. */
  readonly undelivered: Queue;
  /** SWITCHYARD_PODS: where the pods run and log, for the functions (adapters/aws/pod-settings.ts). */
  readonly settings: string;
  private readonly cluster: Cluster;

  constructor(scope: Construct, id: string, props: PodComputeProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.cluster = props.cluster;
    this.logGroups = new Map(
      props.pools.map((pool) => [
        pool.name,
        new LogGroup(this, `Logs-${pool.name}`, { retention: LOG_RETENTION }),
      ]),
    );
    // Only ECS tasks of this account may take the roles (confused-deputy protection).
    const ecsTasks = () =>
      new ServicePrincipal("ecs-tasks.amazonaws.com", {
        conditions: {
          StringEquals: { "aws:SourceAccount": stack.account },
          ArnLike: { "aws:SourceArn": stack.formatArn({ service: "ecs", resource: "*" }) },
        },
      });
    this.executionRole = new Role(this, "ExecutionRole", {
      assumedBy: ecsTasks(),
      description: "Switchyard pods: the ECS agent pulls the image and writes the pod's log",
    });
    for (const group of this.logGroups.values()) {
      group.grant(this.executionRole, "logs:CreateLogStream", "logs:PutLogEvents");
    }
    this.executionRole.addToPrincipalPolicy(
      new PolicyStatement({ actions: ["ecr:GetAuthorizationToken"], resources: ["*"] }),
    );
    this.executionRole.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
        resources: [stack.formatArn({ service: "ecr", resource: "repository", resourceName: "*" })],
      }),
    );
    NagSuppressions.addResourceSuppressions(
      this.executionRole,
      [
        {
          id: "AwsSolutions-IAM5",
          reason:
            "A pod's image is its template's: it may come from any ECR repository of the account. " +
            "ecr:GetAuthorizationToken supports no resource-level permission, so its resource is *; the " +
            "pull actions are scoped to the account's repositories.",
          appliesTo: [
            "Resource::*",
            {
              regex: "/^Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository\\/\\*$/",
            },
          ],
        },
      ],
      true,
    );
    this.taskRole = new Role(this, "TaskRole", {
      assumedBy: ecsTasks(),
      description: "Switchyard pods: the pod's own AWS identity, with no permissions",
    });
    const securityGroup = new SecurityGroup(this, "SecurityGroup", {
      vpc: props.vpc,
      description: "Switchyard pods: no inbound traffic; outbound to their registries and the internet",
      allowAllOutbound: true,
    });

    const settings: PodSettings = {
      cluster: props.cluster.clusterArn,
      subnets: props.vpc.publicSubnets.map((subnet) => subnet.subnetId),
      security_groups: [securityGroup.securityGroupId],
      execution_role_arn: this.executionRole.roleArn,
      task_role_arn: this.taskRole.roleArn,
      log_groups: Object.fromEntries([...this.logGroups].map(([pool, group]) => [pool, group.logGroupName])),
      region: stack.region,
    };
    this.settings = stack.toJsonString(settings);

    for (const pool of props.pools) {
      const queue = props.queues.get(pool.name);
      if (!queue) throw new Error(`pool ${pool.name}: no queue`);
      props.launcher.addEventSource(
        new SqsEventSource(queue, { batchSize: 10, reportBatchItemFailures: true }),
      );
    }
    this.grantLaunch(props.launcher, props.pools);
    this.grantPodAccess(props.launcher);
    this.grantPodAccess(props.events);

    this.undelivered = new Queue(this, "Undelivered", {
      ...queueDefaults,
      retentionPeriod: Duration.seconds(QUEUE_SETTINGS.deadLetterRetentionSeconds),
    });
    NagSuppressions.addResourceSuppressions(this.undelivered, [
      {
        id: "AwsSolutions-SQS3",
        reason:
          "This queue is itself the dead-letter queue of the pod-stopped rule's target. Nothing consumes it " +
          "automatically, so it needs no DLQ of its own; its depth is alarmed, and the tick ends such runs.",
      },
    ]);
    new Rule(this, "PodStopped", {
      description: "A Switchyard pod's ECS task stopped: settle its run",
      eventPattern: {
        source: ["aws.ecs"],
        detailType: ["ECS Task State Change"],
        detail: {
          clusterArn: [props.cluster.clusterArn],
          lastStatus: ["STOPPED"],
          group: Match.prefix("switchyard:"),
        },
      },
      targets: [
        new LambdaFunction(props.events, {
          retryAttempts: 10,
          maxEventAge: Duration.hours(6),
          deadLetterQueue: this.undelivered,
        }),
      ],
    });
  }

  /**
   * Stopping a pod (a cancel, a deadline) and reading its log: ListTasks and StopTask in the cluster,
   * GetLogEvents in the pods' log groups.
   */
  grantPodAccess(grantee: LambdaFunctionResource): void {
    const clusterArn = this.cluster.clusterArn;
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ["ecs:ListTasks"],
        resources: ["*"],
        conditions: { ArnEquals: { "ecs:cluster": clusterArn } },
      }),
    );
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({ actions: ["ecs:StopTask"], resources: [tasksOf(this.cluster)] }),
    );
    for (const group of this.logGroups.values()) group.grant(grantee, "logs:GetLogEvents");
    NagSuppressions.addResourceSuppressions(
      grantee,
      [
        {
          id: "AwsSolutions-IAM5",
          reason:
            "A pod's ECS task and log stream exist only once it runs: StopTask is scoped to the tasks of the " +
            "one cluster, GetLogEvents to the pods' log groups, and ListTasks (no resource-level permission) " +
            "to the cluster by its ecs:cluster condition.",
          appliesTo: [
            "Resource::*",
            {
              regex: "/^Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task\\/.*\\/\\*$/",
            },
            { regex: "/^Resource::<.*Logs.*\\.Arn>:\\*$/" },
          ],
        },
      ],
      true,
    );
  }

  /**
   * Starting a pod: its task definition is registered (and described) at run time, RunTask only with the
   * container pools' families in this cluster, and PassRole only of the pods' two roles, to ECS tasks.
   */
  private grantLaunch(launcher: LambdaFunctionResource, pools: readonly PoolConfig[]): void {
    const stack = Stack.of(this);
    launcher.addToRolePolicy(
      new PolicyStatement({
        actions: ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"],
        resources: ["*"],
      }),
    );
    launcher.addToRolePolicy(
      new PolicyStatement({
        actions: ["ecs:RunTask"],
        resources: pools.map((pool) =>
          stack.formatArn({
            service: "ecs",
            resource: "task-definition",
            resourceName: `switchyard-${pool.name}-*:*`,
            arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
          }),
        ),
        conditions: { ArnEquals: { "ecs:cluster": this.cluster.clusterArn } },
      }),
    );
    launcher.addToRolePolicy(
      new PolicyStatement({
        actions: ["iam:PassRole"],
        resources: [this.executionRole.roleArn, this.taskRole.roleArn],
        conditions: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
      }),
    );
    NagSuppressions.addResourceSuppressions(
      launcher,
      [
        {
          id: "AwsSolutions-IAM5",
          reason:
            "A pod's image is the template's, known only at run time: its task definition is registered then " +
            "(RegisterTaskDefinition and DescribeTaskDefinition support no resource-level permission), and " +
            "RunTask is scoped to the container pools' own families (switchyard-<pool>-<digest>) in the cluster.",
          appliesTo: [
            "Resource::*",
            {
              regex:
                "/^Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task-definition\\/switchyard-.*-\\*:\\*$/",
            },
          ],
        },
      ],
      true,
    );
  }
}
