import type { ITableV2 } from "aws-cdk-lib/aws-dynamodb";
import type { Vpc } from "aws-cdk-lib/aws-ec2";
import { DockerImageAsset } from "aws-cdk-lib/aws-ecr-assets";
import type { Cluster, FargateService } from "aws-cdk-lib/aws-ecs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { hasManagedWorkers, type PoolConfig } from "../../core/config.ts";
import { credentialsKey } from "./pool-credentials.ts";
import { PoolService } from "./pool-service.ts";
import { warnIfConfigDiffers, workerImageProps } from "./worker-image.ts";
import { addWorkerNetwork } from "./worker-network.ts";

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
 * The workers: one ECS Fargate service per CLI pool, all running the worker image, in one cluster (where
 * container pools run their pods too).
 */
export class WorkerServices extends Construct {
  readonly vpc: Vpc;
  readonly cluster: Cluster;
  readonly image: DockerImageAsset;
  /** Pool name -> its service. */
  readonly services: ReadonlyMap<string, FargateService>;

  constructor(scope: Construct, id: string, props: WorkerServicesProps) {
    super(scope, id);
    const network = addWorkerNetwork(this);
    this.vpc = network.vpc;
    this.cluster = network.cluster;
    // Built and pushed by `cdk deploy` (cdk-assets), never at synth: synth only stages the context.
    this.image = new DockerImageAsset(this, "Image", workerImageProps());
    warnIfConfigDiffers(this, props.configFile);

    const services = new Map<string, FargateService>();
    for (const pool of props.pools.filter(hasManagedWorkers)) {
      const queue = props.queues.get(pool.name);
      const secret = props.credentials.get(credentialsKey(pool));
      if (!queue || !secret) throw new Error(`pool ${pool.name}: no queue or credentials secret`);
      const { service } = new PoolService(this, pool.name, {
        ...props,
        pool,
        cluster: this.cluster,
        securityGroup: network.securityGroup,
        image: this.image,
        queue,
        secret,
      });
      services.set(pool.name, service);
    }
    this.services = services;
  }
}
