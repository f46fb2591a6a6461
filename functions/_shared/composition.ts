import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DynamoStore } from "../../core/adapters/aws/dynamo-store.ts";
import { S3BlobStore } from "../../core/adapters/aws/s3-blobs.ts";
import { SqsPoolQueue } from "../../core/adapters/aws/sqs-queue.ts";
import { loadSchedulerConfig } from "../../core/config.ts";
import { type Deps, randomIds, systemClock } from "../../core/deps.ts";
import { ENV } from "../../core/names.ts";
import { logger } from "./http.ts";
import { tracer } from "./observability.ts";

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
}

/** Called with every client set awsClients() builds; e.g. the benchmark's request counter. */
const clientHooks: ((clients: AwsClients) => void)[] = [];

/** Opt-in instrumentation: a module preloaded with `node --import` registers here (bench/worker-counter.ts). */
export function onAwsClients(hook: (clients: AwsClients) => void): void {
  clientHooks.push(hook);
}

export function awsClients(): AwsClients {
  const clients: AwsClients = {
    doc: DynamoDBDocumentClient.from(new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    // The local emulator's queue URLs name hosts that do not resolve; the configured endpoint always works.
    sqs: new SQSClient({ useQueueUrlAsEndpoint: false }),
    s3: new S3Client({
      forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL),
    }),
  };
  for (const hook of clientHooks) hook(clients);
  return clients;
}

/** Builds the use cases' dependencies from the environment and clients. */
export function depsFromEnv(clients: AwsClients, env: NodeJS.ProcessEnv = process.env): Deps {
  return {
    store: new DynamoStore(clients.doc, required(env, ENV.tableName)),
    queue: new SqsPoolQueue(clients.sqs, JSON.parse(required(env, ENV.queueUrls)) as Record<string, string>),
    blobs: new S3BlobStore(clients.s3, required(env, ENV.bucketName)),
    clock: systemClock,
    ids: randomIds,
    random: Math.random,
    config: loadSchedulerConfig(env),
    adminKey: env[ENV.adminKey] ?? "",
    callbackPolicy: callbackPolicyFrom(env),
    callbackSecret: env[ENV.callbackSecret] ?? "",
    log: {
      info: (msg, ...extra) => logger.info(String(msg), ...extra),
      warn: (msg, ...extra) => logger.warn(String(msg), ...extra),
      error: (msg, ...extra) => logger.error(String(msg), ...extra),
    },
  };
}

/**
 * Loopback callbacks only where SWITCHYARD_ALLOW_LOOPBACK_CALLBACKS is "true", and never in a Lambda
 * function: there, loopback is the Lambda runtime API.
 */
function callbackPolicyFrom(env: NodeJS.ProcessEnv): Deps["callbackPolicy"] {
  return { allowLoopback: env[ENV.allowLoopbackCallbacks] === "true" && !env.AWS_LAMBDA_FUNCTION_NAME };
}

/** A secret value: the variable `valueVar`, else the Secrets Manager secret `secretVar` names, else "". */
async function secretFrom(env: NodeJS.ProcessEnv, valueVar: string, secretVar: string): Promise<string> {
  const secretId = env[secretVar];
  if (env[valueVar] || !secretId) return env[valueVar] ?? "";
  const secret = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: secretId }));
  return secret.SecretString ?? "";
}

/** A Lambda function's clients, each traced in X-Ray. */
function tracedClients(): AwsClients {
  const { doc, sqs, s3 } = awsClients();
  return {
    doc: tracer.captureAWSv3Client(doc),
    sqs: tracer.captureAWSv3Client(sqs),
    s3: tracer.captureAWSv3Client(s3),
  };
}

let cached: Promise<Deps> | undefined;

/**
 * Once per cold start: the admin key (SCHEDULER_ADMIN_KEY or the secret SCHEDULER_ADMIN_KEY_SECRET names)
 * and the callback signing key (SWITCHYARD_CALLBACK_SECRET or the secret SWITCHYARD_CALLBACK_SECRET_ARN
 * names). A failed read is tried again by the next invocation.
 */
export const lambdaDeps = (): Promise<Deps> => {
  cached ??= Promise.all([
    secretFrom(process.env, ENV.adminKey, ENV.adminKeySecret),
    secretFrom(process.env, ENV.callbackSecret, ENV.callbackSecretArn),
  ]).then(
    ([adminKey, callbackSecret]) => ({ ...depsFromEnv(tracedClients()), adminKey, callbackSecret }),
    (err: unknown) => {
      cached = undefined;
      throw err;
    },
  );
  return cached;
};
