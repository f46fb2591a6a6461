import { ArnFormat, CfnOutput, Stack } from "aws-cdk-lib";
import { FlowLogDestination, FlowLogTrafficType, SecurityGroup, SubnetType, Vpc } from "aws-cdk-lib/aws-ec2";
import { Cluster } from "aws-cdk-lib/aws-ecs";
import { LogGroup } from "aws-cdk-lib/aws-logs";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import { LOG_RETENTION } from "../secure-defaults.ts";

/**
 * Where the workers run: a VPC, the ECS cluster and the workers' security group, in `scope` (their ids
 * are those of a deployed stack: keep them).
 *
 * A VPC with public subnets only and no NAT gateway. Workers need outbound internet (the LLM
 * providers' APIs, AWS APIs) and accept no inbound traffic, so each task gets a public IP and a security
 * group with no ingress rule. A NAT gateway would cost about 32 USD a month per AZ before any traffic, and
 * interface endpoints about 7 USD a month each per AZ, while the providers still need the internet;
 * a task's public IPv4 address costs about 3.6 USD a month only while the task runs (pools scale to zero).
 */
export function addWorkerNetwork(scope: Construct): {
  vpc: Vpc;
  cluster: Cluster;
  securityGroup: SecurityGroup;
} {
  const vpc = new Vpc(scope, "Vpc", {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [{ name: "workers", subnetType: SubnetType.PUBLIC, cidrMask: 20 }],
    // Nothing runs in the default security group; the workers have their own, without ingress.
    restrictDefaultSecurityGroup: false,
    flowLogs: {
      // Every connection the agents' CLIs open, for audit; the log group expires like the others.
      all: {
        trafficType: FlowLogTrafficType.ALL,
        destination: FlowLogDestination.toCloudWatchLogs(
          new LogGroup(scope, "FlowLogs", { retention: LOG_RETENTION }),
        ),
      },
    },
  });
  // Container Insights is left to the account setting: it bills custom metrics per task and service
  // even when idle, and the scaling and alarms here use the free SQS and AWS/ECS metrics.
  const cluster = new Cluster(scope, "Cluster", { vpc });
  new CfnOutput(Stack.of(scope), "WorkerClusterName", {
    description: "ECS cluster of the pool worker services",
    value: cluster.clusterName,
  });
  NagSuppressions.addResourceSuppressions(cluster, [
    {
      id: "AwsSolutions-ECS4",
      reason:
        "Container Insights bills custom metrics per cluster, service and task, idle or not; it follows the " +
        "account-level setting. Scaling and alarms use the SQS queue metrics, AWS/ECS publishes service " +
        "CPU and memory for free, and worker logs go to CloudWatch Logs.",
    },
  ]);

  const securityGroup = new SecurityGroup(scope, "WorkerSecurityGroup", {
    vpc,
    description: "Switchyard workers: no inbound traffic; outbound to AWS APIs and the LLM providers",
    allowAllOutbound: true,
  });
  return { vpc, cluster, securityGroup };
}

/** The ARN pattern of the tasks of a cluster. */
export function tasksOf(cluster: Cluster): string {
  return Stack.of(cluster).formatArn({
    service: "ecs",
    resource: "task",
    resourceName: `${cluster.clusterName}/*`,
    arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
  });
}
