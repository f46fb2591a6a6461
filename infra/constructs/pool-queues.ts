import { Duration } from "aws-cdk-lib";
import { type DeduplicationScope, type FifoThroughputLimit, Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import type { PoolConfig } from "../../core/config.ts";
import { QUEUE_SETTINGS } from "../../core/names.ts";
import { queueDefaults } from "../secure-defaults.ts";

export interface PoolQueuesProps {
  readonly pools: readonly PoolConfig[];
}

/** One SQS FIFO queue per pool, each with its own FIFO dead-letter queue. */
export class PoolQueues extends Construct {
  /** Pool name -> its work queue. */
  readonly queues: ReadonlyMap<string, Queue>;
  /** Pool name -> the dead-letter queue of its work queue. */
  readonly dlqs: ReadonlyMap<string, Queue>;

  constructor(scope: Construct, id: string, { pools }: PoolQueuesProps) {
    super(scope, id);
    const queues = new Map<string, Queue>();
    const dlqs = new Map<string, Queue>();
    for (const pool of pools) {
      const poolScope = new Construct(this, pool.name);
      const dlq = new Queue(poolScope, "Dlq", {
        ...queueDefaults,
        fifo: true,
        retentionPeriod: Duration.seconds(QUEUE_SETTINGS.deadLetterRetentionSeconds),
      });
      const queue = new Queue(poolScope, "Queue", {
        ...queueDefaults,
        fifo: true,
        visibilityTimeout: Duration.seconds(QUEUE_SETTINGS.pool.visibilitySeconds(pool)),
        deduplicationScope: QUEUE_SETTINGS.pool.deduplicationScope as DeduplicationScope,
        fifoThroughputLimit: QUEUE_SETTINGS.pool.fifoThroughputLimit as FifoThroughputLimit,
        deadLetterQueue: { queue: dlq, maxReceiveCount: QUEUE_SETTINGS.pool.maxReceiveCount },
      });
      queues.set(pool.name, queue);
      dlqs.set(pool.name, dlq);
    }
    this.queues = queues;
    this.dlqs = dlqs;
  }
}
