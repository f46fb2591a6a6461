import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SNSClient } from "@aws-sdk/client-sns";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DynamoStore } from "../adapters/aws/dynamo-store.ts";
import { podSettingsSchema } from "../adapters/aws/pod-settings.ts";
import { S3_CLIENT_SETTINGS, S3BlobStore } from "../adapters/aws/s3-blobs.ts";
import { SnsEventBus } from "../adapters/aws/sns-events.ts";
import { SqsCallbackRetryQueue } from "../adapters/aws/sqs-callback-queue.ts";
import { SqsPoolQueue } from "../adapters/aws/sqs-queue.ts";
import { SqsWorkflowQueue } from "../adapters/aws/sqs-workflow-queue.ts";
import { systemResolver } from "../adapters/net/resolver.ts";
import { nodeWebhookSender } from "../adapters/net/webhook-sender.ts";
import type { CallbackRetryQueue } from "../core/callbacks.ts";
import type { SchedulerConfig } from "../core/config.ts";
import { type Deps, randomIds, storePorts, systemClock } from "../core/deps.ts";
import { CONFIG_REFRESH_SECONDS, refreshConfig } from "../core/live-config.ts";
import { ENV } from "../core/names.ts";
import type { ConfigSource, ContainerRunner, EventBus, PodLogs, StreamConnections } from "../core/ports.ts";
import { RUN_STREAM_PATH } from "../core/run-stream.ts";

/**
 * The composition root: reads the environment and builds the clients and adapters, once per process.
 * The Lambda functions, the worker and the local stack all build their dependencies here.
 */

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

/** The AWS SDK clients a process needs. Endpoints come from the standard AWS_ENDPOINT_URL* variables. */
export interface AwsClients {
  doc: DynamoDBDocumentClient;
  sqs: SQSClient;
  s3: S3Client;
  sns: SNSClient;
}

export function awsClients(): AwsClients {
  return {
    doc: DynamoDBDocumentClient.from(new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    // The local emulator's queue URLs name hosts that do not resolve; the configured endpoint always works.
    sqs: new SQSClient({ useQueueUrlAsEndpoint: false }),
    s3: new S3Client({
      forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL),
      ...S3_CLIENT_SETTINGS,
    }),
    sns: new SNSClient({}),
  };
}

/** How often this process looks for a reloaded config: SWITCHYARD_CONFIG_REFRESH_SECONDS, else 30. */
export const configRefreshSecondsFrom = (env: NodeJS.ProcessEnv = process.env) =>
  Number(env[ENV.configRefreshSeconds] ?? CONFIG_REFRESH_SECONDS);

/**
 * A long-running process (a worker, the local stack) takes a reloaded config now, then keeps looking for
 * one every `everySeconds` in the background. Returns the stop of the looking.
 */
export async function keepConfigFresh(deps: Deps, everySeconds: number): Promise<() => void> {
  await refreshConfig(deps, 0);
  const timer = setInterval(() => void refreshConfig(deps, 0), everySeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Builds the use cases' dependencies from the environment, clients and pools, logging to `log`; a process
 * that serves reloads gives where it reads the config (runtime/scheduler-config.ts).
 */
export function depsFromEnv(
  clients: Pick<AwsClients, "doc" | "sqs" | "s3">,
  log: Deps["log"],
  config: SchedulerConfig,
  env: NodeJS.ProcessEnv = process.env,
  configSource: ConfigSource = RELOADS_NOTHING,
): Deps {
  return {
    ...storePorts(new DynamoStore(clients.doc, required(env, ENV.tableName))),
    queue: new SqsPoolQueue(clients.sqs, JSON.parse(required(env, ENV.queueUrls)) as Record<string, string>),
    blobs: new S3BlobStore(clients.s3, required(env, ENV.bucketName)),
    clock: systemClock,
    ids: randomIds,
    random: Math.random,
    config,
    configSource,
    adminKey: env[ENV.adminKey] ?? "",
    callbackPolicy: callbackPolicyFrom(env),
    callbackSecret: env[ENV.callbackSecret] ?? "",
    resolve: systemResolver,
    webhooks: nodeWebhookSender,
    log,
    ...podsFromEnv(env),
    ...workflowsFromEnv(clients.sqs, env),
  };
}

/** The config source of a process that serves no reload (only the API does: POST /v2/reload). */
export const RELOADS_NOTHING: ConfigSource = {
  load: () => Promise.reject(new Error("this process serves no reload")),
};

/**
 * The pods of container pools on ECS, and their logs in CloudWatch Logs, where SWITCHYARD_PODS is set.
 * Their clients load on first use: most processes never start, stop or read a pod.
 */
function podsFromEnv(env: NodeJS.ProcessEnv): Pick<Deps, "containers" | "podLogs"> {
  const text = env[ENV.pods];
  let adapters: Promise<{ runner: ContainerRunner; logs: PodLogs }> | undefined;
  const loaded = () => {
    if (text === undefined) return Promise.reject(new Error("this stack runs no container pools"));
    const settings = podSettingsSchema.parse(JSON.parse(text));
    adapters ??= Promise.all([
      import("@aws-sdk/client-ecs"),
      import("@aws-sdk/client-cloudwatch-logs"),
      import("../adapters/aws/ecs-pods.ts"),
      import("../adapters/aws/cloudwatch-pod-logs.ts"),
    ]).then(([ecs, logs, { EcsContainerRunner }, { CloudWatchPodLogs }]) => ({
      runner: new EcsContainerRunner(new ecs.ECSClient({}), settings),
      logs: new CloudWatchPodLogs(new logs.CloudWatchLogsClient({}), settings.log_groups),
    }));
    return adapters;
  };
  return {
    containers: {
      start: async (launch) => (await loaded()).runner.start(launch),
      stop: async (pool, runId, reason) => (await loaded()).runner.stop(pool, runId, reason),
    },
    podLogs: {
      read: async (pool, id, maxBytes) => (await loaded()).logs.read(pool, id, maxBytes),
      tail: async (pool, id, maxBytes) => (await loaded()).logs.tail(pool, id, maxBytes),
    },
  };
}

/**
 * Runs' live results streams: pushed through the WebSocket API's management endpoint where
 * SWITCHYARD_STREAM_ENDPOINT is set (its client loads on first use), opened at SWITCHYARD_STREAM_URL
 * (default: the path the local server serves); the workflows function's queue where
 * SWITCHYARD_WORKFLOW_QUEUE_URL is set.
 */
function workflowsFromEnv(
  sqs: SQSClient,
  env: NodeJS.ProcessEnv,
): Pick<Deps, "streams" | "streamUrl" | "workflowQueue"> {
  const endpoint = env[ENV.streamEndpoint];
  const queueUrl = env[ENV.workflowQueueUrl];
  let adapter: Promise<StreamConnections> | undefined;
  const loaded = () => {
    if (endpoint === undefined) return Promise.reject(new Error("this process pushes no run streams"));
    adapter ??= Promise.all([
      import("@aws-sdk/client-apigatewaymanagementapi"),
      import("../adapters/aws/stream-connections.ts"),
    ]).then(
      ([api, { ApiGatewayStreamConnections }]) =>
        new ApiGatewayStreamConnections(new api.ApiGatewayManagementApiClient({ endpoint })),
    );
    return adapter;
  };
  return {
    streams: {
      send: async (connectionId, frame) => (await loaded()).send(connectionId, frame),
      close: async (connectionId) => (await loaded()).close(connectionId),
    },
    streamUrl: env[ENV.streamUrl] ?? RUN_STREAM_PATH,
    workflowQueue:
      queueUrl === undefined
        ? { send: () => Promise.reject(new Error("this process has no workflows queue")) }
        : new SqsWorkflowQueue(sqs, queueUrl),
  };
}

/** Where the events relay reports itself: its heartbeat item in the table. */
export const relayBeatsFromEnv = (
  clients: Pick<AwsClients, "doc">,
  log: Deps["log"],
  env: NodeJS.ProcessEnv = process.env,
) => ({ heartbeats: new DynamoStore(clients.doc, required(env, ENV.tableName)), clock: systemClock, log });

/** The topic every event goes to (the events relay publishes there). */
export const eventBusFromEnv = (
  clients: Pick<AwsClients, "sns">,
  env: NodeJS.ProcessEnv = process.env,
): EventBus => new SnsEventBus(clients.sns, required(env, ENV.topicArn));

/** The callback queue, which an undelivered callback's message comes back on. */
export const callbackQueueFromEnv = (
  clients: Pick<AwsClients, "sqs">,
  env: NodeJS.ProcessEnv = process.env,
): CallbackRetryQueue => new SqsCallbackRetryQueue(clients.sqs, required(env, ENV.callbackQueueUrl));

/**
 * Loopback callbacks only where SWITCHYARD_ALLOW_LOOPBACK_CALLBACKS is "true", and never in a Lambda
 * function: there, loopback is the Lambda runtime API.
 */
function callbackPolicyFrom(env: NodeJS.ProcessEnv): Deps["callbackPolicy"] {
  return { allowLoopback: env[ENV.allowLoopbackCallbacks] === "true" && !env.AWS_LAMBDA_FUNCTION_NAME };
}

/** A secret value: the variable `valueVar`, else the Secrets Manager secret `secretVar` names, else "". */
export async function secretFrom(
  env: NodeJS.ProcessEnv,
  valueVar: string,
  secretVar: string,
): Promise<string> {
  const secretId = env[secretVar];
  if (env[valueVar] || !secretId) return env[valueVar] ?? "";
  const secret = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: secretId }));
  return secret.SecretString ?? "";
}
