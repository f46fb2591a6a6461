import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Annotations, ArnFormat, CfnOutput, Duration, IgnoreMode, Stack } from "aws-cdk-lib";
import { AdjustmentType, type ScalingInterval } from "aws-cdk-lib/aws-applicationautoscaling";
import { MathExpression, Stats } from "aws-cdk-lib/aws-cloudwatch";
import type { ITableV2 } from "aws-cdk-lib/aws-dynamodb";
import { FlowLogDestination, FlowLogTrafficType, SecurityGroup, SubnetType, Vpc } from "aws-cdk-lib/aws-ec2";
import { DockerImageAsset, type DockerImageAssetProps, Platform } from "aws-cdk-lib/aws-ecr-assets";
import {
  Cluster,
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
import type { PoolConfig } from "../../core/config.ts";
import { ENV } from "../../core/names.ts";
import { GRANT_WILDCARD_FINDINGS, GRANT_WILDCARDS } from "../nag.ts";
import { functionDefaults, LOG_RETENTION, workerStop } from "../secure-defaults.ts";
import { credentialsKey } from "./pool-credentials.ts";
import { PROJECT_ROOT, PROJECT_VERSION } from "./switchyard-function.ts";

/** The worker's Dockerfile, relative to the repository root (its build context). */
export const WORKER_DOCKERFILE = "containers/worker/Dockerfile";
/** Where the Dockerfile puts the scheduler config inside the image. */
export const WORKER_CONFIG_PATH = "/app/scheduler.config.yaml";

/**
 * The Docker build context, as exclude patterns: everything but what the Dockerfile COPYs from it.
 * CDK stages (copies) the context into cdk.out at synth and fingerprints it: an allow-list keeps
 * node_modules, cdk.out, .data and .git out, and keeps README or test edits from changing the image hash
 * (which would roll every worker). It is read from the Dockerfile, so the two cannot drift apart.
 */
export function workerContextExcludes(dockerfile = resolve(PROJECT_ROOT, WORKER_DOCKERFILE)): string[] {
  const sources = readFileSync(dockerfile, "utf8")
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([instruction, ...args]) => instruction?.toUpperCase() === "COPY" && !args.some(isFromStage))
    .flatMap(([, ...args]) => args.filter((arg) => !arg.startsWith("--")).slice(0, -1))
    .map((source) => source.replace(/^\.\//, "").replace(/\/$/, ""));
  return ["*", ...new Set(sources)].map((source, i) => (i === 0 ? source : `!${source}`));
}
const isFromStage = (arg: string) => arg.startsWith("--from=");

/** The worker image: built from the repository root for ARM64 (Graviton Fargate), by `cdk deploy` only. */
export const workerImageProps = (): DockerImageAssetProps => ({
  directory: PROJECT_ROOT,
  file: WORKER_DOCKERFILE,
  platform: Platform.LINUX_ARM64,
  ignoreMode: IgnoreMode.DOCKER,
  exclude: workerContextExcludes(),
});

/** Fargate's valid memory sizes (MiB) for each task CPU size (CPU units). */
export function fargateMemoryOptions(cpu: number): number[] {
  const range = (min: number, max: number, step: number) =>
    Array.from({ length: (max - min) / step + 1 }, (_, i) => min + i * step);
  const options: Record<number, number[]> = {
    256: [512, 1024, 2048],
    512: range(1024, 4096, 1024),
    1024: range(2048, 8192, 1024),
    2048: range(4096, 16384, 1024),
    4096: range(8192, 30720, 1024),
    8192: range(16384, 61440, 4096),
    16384: range(32768, 122880, 8192),
  };
  return options[cpu] ?? [];
}

/**
 * Scale-out steps on the number of visible messages (runs admitted but not yet claimed by a worker):
 * roughly one more worker per `slots` waiting messages, in at most 5 steps, never more than `max` at once.
 * Below one message there is no step (no alarm): scale-in is a separate, slower policy.
 */
export function scaleOutSteps(max: number, slots: number): ScalingInterval[] {
  const count = Math.max(2, Math.min(max, 5));
  return Array.from({ length: count }, (_, i) => ({ lower: i * slots + 1, change: Math.min(i + 1, max) }));
}

/** How the pool services scale in: one worker at a time, after this long without any work. */
export const SCALE_IN = { idlePeriod: Duration.minutes(5), idlePeriods: 6, cooldown: Duration.minutes(5) };
/** Time for a new worker to start and take work before another scale-out step (image pull included). */
export const SCALE_OUT_COOLDOWN = Duration.minutes(3);

export interface WorkerServicesProps {
  readonly pools: readonly PoolConfig[];
  /** Pool name -> its work queue. */
  readonly queues: ReadonlyMap<string, Queue>;
  /** `tool/account` -> the secret holding that account's credentials (see PoolCredentials). */
  readonly credentials: ReadonlyMap<string, ISecret>;
  readonly table: ITableV2;
  readonly bucket: IBucket;
  /** Environment shared with the functions: table, bucket, topic, queue URLs. */
  readonly environment: Record<string, string>;
  /** The scheduler config file the pools came from (the image bakes the repository's one). */
  readonly configFile: string;
}

/**
 * One ECS Fargate service per pool, all running the worker image, in one cluster.
 *
 * Network: a VPC with public subnets only and no NAT gateway. Workers need outbound internet (the LLM
 * providers' APIs, AWS APIs) and accept no inbound traffic, so each task gets a public IP and a security
 * group with no ingress rule. A NAT gateway would cost about 32 USD a month per AZ before any traffic, and
 * interface endpoints about 7 USD a month each per AZ, while the providers still need the internet;
 * a task's public IPv4 address costs about 3.6 USD a month only while the task runs (pools scale to zero).
 */
export class WorkerServices extends Construct {
  readonly vpc: Vpc;
  readonly cluster: Cluster;
  readonly image: DockerImageAsset;
  /** Pool name -> its service. */
  readonly services: ReadonlyMap<string, FargateService>;

  constructor(scope: Construct, id: string, props: WorkerServicesProps) {
    super(scope, id);
    const { pools, queues, credentials } = props;

    this.vpc = new Vpc(this, "Vpc", {
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
            new LogGroup(this, "FlowLogs", { retention: LOG_RETENTION }),
          ),
        },
      },
    });
    // Container Insights is left to the account setting: it bills custom metrics per task and service
    // even when idle, and the scaling and alarms here use the free SQS and AWS/ECS metrics.
    this.cluster = new Cluster(this, "Cluster", { vpc: this.vpc });
    new CfnOutput(Stack.of(this), "WorkerClusterName", {
      description: "ECS cluster of the pool worker services",
      value: this.cluster.clusterName,
    });
    NagSuppressions.addResourceSuppressions(this.cluster, [
      {
        id: "AwsSolutions-ECS4",
        reason:
          "Container Insights bills custom metrics per cluster, service and task, idle or not; it follows the " +
          "account-level setting. Scaling and alarms use the SQS queue metrics, AWS/ECS publishes service " +
          "CPU and memory for free, and worker logs go to CloudWatch Logs.",
      },
    ]);

    const securityGroup = new SecurityGroup(this, "WorkerSecurityGroup", {
      vpc: this.vpc,
      description: "Switchyard workers: no inbound traffic; outbound to AWS APIs and the LLM providers",
      allowAllOutbound: true,
    });

    // Built and pushed by `cdk deploy` (cdk-assets), never at synth: synth only stages the context.
    this.image = new DockerImageAsset(this, "Image", workerImageProps());
    warnIfConfigDiffers(this, props.configFile);

    const services = new Map<string, FargateService>();
    for (const pool of pools) {
      const queue = queues.get(pool.name);
      const secret = credentials.get(credentialsKey(pool));
      if (!queue || !secret) throw new Error(`pool ${pool.name}: no queue or credentials secret`);
      services.set(pool.name, this.addPool(pool, { ...props, queue, secret, securityGroup }));
    }
    this.services = services;
  }

  private addPool(
    pool: PoolConfig,
    props: WorkerServicesProps & { queue: Queue; secret: ISecret; securityGroup: SecurityGroup },
  ): FargateService {
    const { worker } = pool;
    const scope = new Construct(this, pool.name);
    if (!fargateMemoryOptions(worker.cpu).includes(worker.memory)) {
      throw new Error(
        `pool ${pool.name}: Fargate has no task size cpu ${worker.cpu} / memory ${worker.memory}; with cpu ` +
          `${worker.cpu} memory may be ${fargateMemoryOptions(worker.cpu).join(", ") || "(none: cpu must be 256, 512, 1024, 2048, 4096, 8192 or 16384)"}`,
      );
    }

    const taskDefinition = new FargateTaskDefinition(scope, "Task", {
      cpu: worker.cpu,
      memoryLimitMiB: worker.memory,
      runtimePlatform: {
        cpuArchitecture: CpuArchitecture.ARM64,
        operatingSystemFamily: OperatingSystemFamily.LINUX,
      },
    });
    const { NODE_OPTIONS: _sourceMapsOfBundles, ...powertools } = functionDefaults.environment;
    taskDefinition.addContainer("worker", {
      image: ContainerImage.fromDockerImageAsset(this.image),
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
        logGroup: new LogGroup(scope, "Logs", { retention: LOG_RETENTION }),
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
        resources: [this.tasksOfCluster()],
      }),
    );

    // No desiredCount: CloudFormation would reset it on every deployment; the scalable target owns it.
    const service = new FargateService(scope, "Service", {
      cluster: this.cluster,
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

    const scaling = service.autoScaleTaskCount({ minCapacity: worker.min, maxCapacity: worker.max });
    if (worker.max > 0) {
      const period = Duration.minutes(1);
      const visible = props.queue.metricApproximateNumberOfMessagesVisible({
        period,
        statistic: Stats.MAXIMUM,
      });
      scaling.scaleOnMetric("ScaleOut", {
        metric: visible,
        scalingSteps: scaleOutSteps(worker.max, worker.slots),
        adjustmentType: AdjustmentType.CHANGE_IN_CAPACITY,
        cooldown: SCALE_OUT_COOLDOWN,
        evaluationPeriods: 1,
      });
      // Scale in one worker at a time once nothing was waiting and nothing was taken for 30 minutes.
      // The queue cannot see running jobs (a worker deletes the message when it claims the run): a worker
      // holding jobs protects its task from scale-in (ECS task protection), and one stopped anyway (a
      // protection that could not be set) drains and hands its runs back.
      scaling.scaleOnMetric("ScaleIn", {
        metric: new MathExpression({
          expression: "visible + received",
          usingMetrics: {
            visible: props.queue.metricApproximateNumberOfMessagesVisible({
              period: SCALE_IN.idlePeriod,
              statistic: Stats.MAXIMUM,
            }),
            received: props.queue.metricNumberOfMessagesReceived({
              period: SCALE_IN.idlePeriod,
              statistic: Stats.SUM,
            }),
          },
          period: SCALE_IN.idlePeriod,
          label: "messages waiting or taken",
        }),
        scalingSteps: [
          { upper: 0, change: -1 },
          { lower: 0, change: 0 },
        ],
        adjustmentType: AdjustmentType.CHANGE_IN_CAPACITY,
        cooldown: SCALE_IN.cooldown,
        evaluationPeriods: SCALE_IN.idlePeriods,
      });
    }

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
    return service;
  }

  /** The ARN pattern of the tasks of this cluster. */
  private tasksOfCluster(): string {
    return Stack.of(this).formatArn({
      service: "ecs",
      resource: "task",
      resourceName: `${this.cluster.clusterName}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }
}

/** The image bakes the repository's scheduler.config.yaml; say so if the stacks were built from another. */
function warnIfConfigDiffers(scope: Construct, configFile: string) {
  const baked = resolve(PROJECT_ROOT, "scheduler.config.yaml");
  const read = (file: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
  };
  if (resolve(configFile) === baked || read(configFile) === read(baked)) return;
  Annotations.of(scope).addWarningV2(
    "switchyard:worker-config",
    `The worker image bakes ${baked} (${WORKER_CONFIG_PATH}), but the pools came from ${configFile}: ` +
      "workers would read other pool settings. Copy the file to scheduler.config.yaml before deploying.",
  );
}
