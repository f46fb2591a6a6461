import { Duration } from "aws-cdk-lib";
import type { ITableV2 } from "aws-cdk-lib/aws-dynamodb";
import { type SecurityGroup, SubnetType } from "aws-cdk-lib/aws-ec2";
import type { DockerImageAsset } from "aws-cdk-lib/aws-ecr-assets";
import {
  type Cluster,
  ContainerImage,
  CpuArchitecture,
  Secret as EcsSecret,
  FargateService,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
  PropagatedTagSource,
} from "aws-cdk-lib/aws-ecs";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import { LogGroup } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { NagSuppressions } from "cdk-nag";
import { Construct } from "constructs";
import type { CliPool } from "../../core/config.ts";
import { ENV } from "../../core/names.ts";
import { fargateMemoryOptions } from "../../core/pods.ts";
import { GRANT_WILDCARD_FINDINGS, GRANT_WILDCARDS } from "../nag.ts";
import { functionDefaults, LOG_RETENTION, workerStop } from "../secure-defaults.ts";
import { PROJECT_VERSION } from "./switchyard-function.ts";
import { WORKER_CONFIG_PATH } from "./worker-image.ts";
import { tasksOf } from "./worker-network.ts";
import { scaleOnQueue } from "./worker-scaling.ts";

export interface PoolServiceProps {
  readonly pool: CliPool;
  readonly cluster: Cluster;
  readonly securityGroup: SecurityGroup;
  readonly image: DockerImageAsset;
  /** The pool's work queue. */
  readonly queue: Queue;
  /** Every pool's work queue: a worker that ends a run admits its pool's next task. */
  readonly queues: ReadonlyMap<string, Queue>;
  /** The secret holding the pool account's credentials. */
  readonly secret: ISecret;
  readonly table: ITableV2;
  readonly bucket: IBucket;
  /** Environment shared with the functions: table, bucket, topic, queue URLs. */
  readonly environment: Record<string, string>;
}

/** One pool's Fargate service: its task definition, the worker container, its grants and its scaling. */
export class PoolService extends Construct {
  readonly service: FargateService;

  constructor(scope: Construct, id: string, props: PoolServiceProps) {
    super(scope, id);
    const { pool } = props;
    const { worker } = pool;
    if (!fargateMemoryOptions(worker.cpu).includes(worker.memory)) {
      throw new Error(
        `pool ${pool.name}: Fargate has no task size cpu ${worker.cpu} / memory ${worker.memory}; with cpu ` +
          `${worker.cpu} memory may be ${fargateMemoryOptions(worker.cpu).join(", ") || "(none: cpu must be 256, 512, 1024, 2048, 4096, 8192 or 16384)"}`,
      );
    }

    const taskDefinition = new FargateTaskDefinition(this, "Task", {
      cpu: worker.cpu,
      memoryLimitMiB: worker.memory,
      runtimePlatform: {
        cpuArchitecture: CpuArchitecture.ARM64,
        operatingSystemFamily: OperatingSystemFamily.LINUX,
      },
    });
    const { NODE_OPTIONS: _sourceMapsOfBundles, ...powertools } = functionDefaults.environment;
    taskDefinition.addContainer("worker", {
      image: ContainerImage.fromDockerImageAsset(props.image),
      environment: {
        ...powertools,
        ...props.environment,
        [ENV.schedulerConfig]: WORKER_CONFIG_PATH,
        [ENV.pool]: pool.name,
        [ENV.drainSeconds]: String(workerStop.drainSeconds),
        [ENV.version]: PROJECT_VERSION,
      },
      // The whole secret (a JSON object of env vars), read by the ECS agent at task start.
      secrets: { [ENV.credentials]: EcsSecret.fromSecretsManager(props.secret) },
      stopTimeout: Duration.seconds(workerStop.stopTimeoutSeconds),
      logging: LogDrivers.awsLogs({
        streamPrefix: "worker",
        logGroup: new LogGroup(this, "Logs", { retention: LOG_RETENTION }),
      }),
    });

    const taskRole = taskDefinition.taskRole;
    props.table.grantReadWriteData(taskRole);
    props.bucket.grantReadWrite(taskRole);
    props.queue.grantConsumeMessages(taskRole);
    // A worker that ends a run admits the pool's next task: it sends to the pool queues.
    for (const queue of props.queues.values()) queue.grantSendMessages(taskRole);
    // A worker holding jobs protects its own task from scale-in (containers/worker/scale-in-protection.ts).
    taskRole.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
        resources: [tasksOf(props.cluster)],
      }),
    );

    // No desiredCount: CloudFormation would reset it on every deployment; the scalable target owns it.
    const service = new FargateService(this, "Service", {
      cluster: props.cluster,
      taskDefinition,
      assignPublicIp: true,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      securityGroups: [props.securityGroup],
      // A deployment starts the new workers before it stops (drains) the old ones.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
      propagateTags: PropagatedTagSource.SERVICE,
      enableECSManagedTags: true,
    });

    scaleOnQueue(service, props.queue, worker);
    this.service = service;

    NagSuppressions.addResourceSuppressions(taskDefinition, [
      {
        id: "AwsSolutions-ECS2",
        reason:
          "The plain environment holds only resource names, queue URLs and tuning (table, bucket, topic, " +
          "pool, drain seconds, config path), none secret; the account credentials are injected from " +
          "Secrets Manager as SWITCHYARD_CREDENTIALS.",
      },
    ]);
    NagSuppressions.addResourceSuppressions(
      taskDefinition,
      [
        { id: "AwsSolutions-IAM5", reason: GRANT_WILDCARDS, appliesTo: GRANT_WILDCARD_FINDINGS },
        {
          id: "AwsSolutions-IAM5",
          reason:
            "The execution role pulls the worker image: ecr:GetAuthorizationToken supports no resource-level " +
            "permissions, so its resource is *; the image pull itself is scoped to the CDK assets repository.",
          appliesTo: ["Resource::*"],
        },
        {
          id: "AwsSolutions-IAM5",
          reason:
            "Task scale-in protection is set by the task itself, whose id exists only at run time: the " +
            "resource is the tasks of this one cluster.",
          appliesTo: [
            {
              regex: "/^Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task\\/.*\\/\\*$/",
            },
          ],
        },
      ],
      true,
    );
  }
}
