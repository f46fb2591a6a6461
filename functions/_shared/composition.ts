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

export function awsClients(): AwsClients {
  return {
    doc: DynamoDBDocumentClient.from(new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    // The local emulator's queue URLs name hosts that do not resolve; the configured endpoint always works.
    sqs: new SQSClient({ useQueueUrlAsEndpoint: false }),
    s3: new S3Client({
      forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL),
    }),
  };
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
    log: {
      info: (msg, ...extra) => logger.info(String(msg), ...extra),
      warn: (msg, ...extra) => logger.warn(String(msg), ...extra),
      error: (msg, ...extra) => logger.error(String(msg), ...extra),
    },
  };
}

/** The admin key: SCHEDULER_ADMIN_KEY, else the secret SCHEDULER_ADMIN_KEY_SECRET names, else none. */
async function adminKeyFrom(env: NodeJS.ProcessEnv): Promise<string> {
  const secretId = env[ENV.adminKeySecret];
  if (env[ENV.adminKey] || !secretId) return env[ENV.adminKey] ?? "";
  const secret = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: secretId }));
  return secret.SecretString ?? "";
}

let cached: Promise<Deps> | undefined;

/** Once per cold start. */
export const lambdaDeps = (): Promise<Deps> => {
  cached ??= adminKeyFrom(process.env).then((adminKey) => ({ ...depsFromEnv(awsClients()), adminKey }));
  return cached;
};
