import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  UpdateTableCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import {
  BucketAlreadyOwnedByYou,
  type BucketLocationConstraint,
  CreateBucketCommand,
} from "@aws-sdk/client-s3";
import { CreateTopicCommand, SubscribeCommand } from "@aws-sdk/client-sns";
import { CreateQueueCommand, GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { backfillTable } from "../adapters/aws/table-backfill.ts";
import { tableDefinition } from "../adapters/aws/table-definition.ts";
import type { PoolConfig, SchedulerConfig } from "../core/config.ts";
import { CALLBACK_FILTER_POLICY, WORKFLOW_FILTER_POLICY } from "../core/events.ts";
import { LOCAL_NAMES, QUEUE_SETTINGS } from "../core/names.ts";
import type { LocalClients } from "./aws-clients.ts";

/** The shape of `LOCAL_NAMES`; tests pass their own to stay apart from each other. */
export interface LocalNames {
  table: string;
  bucket: string;
  topic: string;
  queue(pool: string): string;
}

export interface LocalResources {
  tableName: string;
  bucketName: string;
  topicArn: string;
  /** Pool name -> SQS FIFO queue URL, exactly as the emulator returned it. */
  queueUrls: Record<string, string>;
  /** The callback function's queue, subscribed to the topic for run-end events, and its DLQ. */
  callbackQueueUrl: string;
  callbackQueueArn: string;
  callbackDlqUrl: string;
  /** The workflows function's queue, subscribed to the topic for node tasks' starts and ends. */
  workflowQueueUrl: string;
  workflowQueueArn: string;
}

/** `switchyard-<pool>.fifo` -> `switchyard-<pool>-dlq.fifo`. */
/** A pool queue's dead-letter queue, by name. */
export const dlqName = (queueName: string) => queueName.replace(/\.fifo$/, "-dlq.fifo");

/** An event queue's subscription: raw events (the body is the DomainEvent), filtered. */
const subscription = (filterPolicy: Readonly<Record<string, readonly string[]>>) =>
  ({ RawMessageDelivery: "true", FilterPolicy: JSON.stringify(filterPolicy) }) as const;
export const CALLBACK_SUBSCRIPTION = subscription(CALLBACK_FILTER_POLICY);

/** Creates the table, pool queues (with DLQs), topic, callback queue (subscribed) and bucket. Safe to call again. */
export async function createLocalResources(
  clients: LocalClients,
  config: SchedulerConfig,
  names: LocalNames = LOCAL_NAMES,
): Promise<LocalResources> {
  const [topicArn, queues] = await Promise.all([
    createTopic(clients, names.topic),
    Promise.all(
      config.pools.map(async (pool) => [
        pool.name,
        await createPoolQueue(clients, names.queue(pool.name), pool),
      ]),
    ),
    createTable(clients, names.table),
    createBucket(clients, names.bucket),
  ]);
  const [callbacks, workflows] = await Promise.all([
    createEventQueue(clients, topicArn, `${names.topic}-callbacks`, CALLBACK_SUBSCRIPTION),
    createEventQueue(clients, topicArn, `${names.topic}-workflows`, subscription(WORKFLOW_FILTER_POLICY)),
  ]);
  return {
    tableName: names.table,
    bucketName: names.bucket,
    topicArn,
    queueUrls: Object.fromEntries(queues),
    callbackQueueUrl: callbacks.url,
    callbackQueueArn: callbacks.arn,
    callbackDlqUrl: callbacks.dlqUrl,
    workflowQueueUrl: workflows.url,
    workflowQueueArn: workflows.arn,
  };
}

/** Creates the table, or brings a table kept in the data directory by an earlier version up to date. */
async function createTable(clients: LocalClients, tableName: string) {
  const { dynamodb, doc } = clients;
  let existed = false;
  try {
    await dynamodb.send(new CreateTableCommand(tableDefinition(tableName)));
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
    existed = true;
  }
  await waitUntilTableExists(
    { client: dynamodb, minDelay: 1, maxDelay: 2, maxWaitTime: 60 },
    { TableName: tableName },
  );
  if (existed) {
    await addMissingIndexes(clients, tableName);
    await backfillTable(doc, tableName);
  }
}

/** Creates the indexes an earlier version's table lacks, one at a time (as DynamoDB allows), and waits for each. */
export async function addMissingIndexes({ dynamodb }: LocalClients, tableName: string) {
  const definition = tableDefinition(tableName);
  const described = await dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
  const present = new Set((described.Table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName));
  for (const index of definition.GlobalSecondaryIndexes ?? []) {
    if (present.has(index.IndexName)) continue;
    await dynamodb.send(
      new UpdateTableCommand({
        TableName: tableName,
        AttributeDefinitions: definition.AttributeDefinitions,
        GlobalSecondaryIndexUpdates: [{ Create: index }],
      }),
    );
    for (let status: string | undefined; status !== "ACTIVE"; ) {
      const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
      status = Table?.GlobalSecondaryIndexes?.find((i) => i.IndexName === index.IndexName)?.IndexStatus;
      if (status !== "ACTIVE") await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

const deadLetterRetention = { MessageRetentionPeriod: String(QUEUE_SETTINGS.deadLetterRetentionSeconds) };

/** FIFO with explicit deduplication ids. */
const FIFO = { FifoQueue: "true", ContentBasedDeduplication: "false" };

/** A pool queue's attributes (beside its redrive policy and visibility), as on AWS: high throughput mode. */
export const POOL_QUEUE_ATTRIBUTES = {
  ...FIFO,
  DeduplicationScope: QUEUE_SETTINGS.pool.deduplicationScope,
  FifoThroughputLimit: QUEUE_SETTINGS.pool.fifoThroughputLimit,
};

/** A FIFO queue (explicit deduplication ids) whose poison messages go to a FIFO DLQ. */
async function createPoolQueue({ sqs }: LocalClients, queueName: string, pool: PoolConfig): Promise<string> {
  const dlq = await sqs.send(
    new CreateQueueCommand({
      QueueName: dlqName(queueName),
      Attributes: { ...FIFO, ...deadLetterRetention },
    }),
  );
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }),
  );
  const redrivePolicy = {
    deadLetterTargetArn: Attributes?.QueueArn,
    maxReceiveCount: QUEUE_SETTINGS.pool.maxReceiveCount,
  };
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: queueName,
      Attributes: {
        ...POOL_QUEUE_ATTRIBUTES,
        RedrivePolicy: JSON.stringify(redrivePolicy),
        VisibilityTimeout: String(QUEUE_SETTINGS.pool.visibilitySeconds(pool)),
      },
    }),
  );
  if (!queue.QueueUrl) throw new Error(`CreateQueue ${queueName} returned no URL`);
  return queue.QueueUrl;
}

async function queueArn({ sqs }: LocalClients, queueUrl: string | undefined): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
  );
  if (!Attributes?.QueueArn) throw new Error(`no ARN for the queue ${queueUrl}`);
  return Attributes.QueueArn;
}

/**
 * A standard queue (with a standard DLQ after CALLBACK_MAX_RECEIVES receives) subscribed to the topic
 * for the events its filter lets through, as on AWS: the callback and workflows functions read theirs.
 */
async function createEventQueue(
  clients: LocalClients,
  topicArn: string,
  queueName: string,
  attributes: ReturnType<typeof subscription>,
) {
  const { sqs, sns } = clients;
  const dlq = await sqs.send(
    new CreateQueueCommand({ QueueName: `${queueName}-dlq`, Attributes: deadLetterRetention }),
  );
  const redrivePolicy = {
    deadLetterTargetArn: await queueArn(clients, dlq.QueueUrl),
    maxReceiveCount: QUEUE_SETTINGS.eventQueue.maxReceiveCount,
  };
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: queueName,
      Attributes: {
        RedrivePolicy: JSON.stringify(redrivePolicy),
        VisibilityTimeout: String(QUEUE_SETTINGS.eventQueue.visibilitySeconds),
      },
    }),
  );
  if (!queue.QueueUrl || !dlq.QueueUrl) throw new Error(`CreateQueue ${queueName} returned no URL`);
  const arn = await queueArn(clients, queue.QueueUrl);
  await sns.send(
    new SubscribeCommand({ TopicArn: topicArn, Protocol: "sqs", Endpoint: arn, Attributes: attributes }),
  );
  return { url: queue.QueueUrl, arn, dlqUrl: dlq.QueueUrl };
}

async function createTopic({ sns }: LocalClients, name: string): Promise<string> {
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: name }));
  if (!TopicArn) throw new Error(`CreateTopic ${name} returned no ARN`);
  return TopicArn;
}

async function createBucket({ s3 }: LocalClients, bucketName: string) {
  // Outside us-east-1, S3 (and LocalStack) want the region spelled out.
  const region = await s3.config.region();
  const location =
    region === "us-east-1" ? undefined : { LocationConstraint: region as BucketLocationConstraint };
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucketName, CreateBucketConfiguration: location }));
  } catch (err) {
    if (!(err instanceof BucketAlreadyOwnedByYou)) throw err;
  }
}
