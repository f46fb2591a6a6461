/**
 * Secure defaults shared by every stack, in one place.
 * Constructs spread these first and add only what is specific to them.
 */
import { Duration } from "aws-cdk-lib";
import { Billing, type TablePropsV2 } from "aws-cdk-lib/aws-dynamodb";
import { Architecture, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import { type NodejsFunctionProps, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { BlockPublicAccess, BucketEncryption, type BucketProps, ObjectOwnership } from "aws-cdk-lib/aws-s3";
import type { TopicProps } from "aws-cdk-lib/aws-sns";
import { QueueEncryption, type QueueProps } from "aws-cdk-lib/aws-sqs";
import {
  DEFAULT_CROSS_STACK_REFERENCES,
  S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY,
  VALIDATE_AGAINST_DEFAULT_RULES,
} from "aws-cdk-lib/cx-api";
import { TABLE } from "../core/names.ts";

/** Feature flags the stacks rely on, set on the App (cdk.json does not carry them). */
/** The CloudWatch namespace of the functions' metrics (Powertools EMF). */
export const METRICS_NAMESPACE = "Switchyard";

export const FEATURE_FLAGS = {
  // Deliver S3 server access logs through a bucket policy, not the legacy LogDeliveryWrite ACL.
  [S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY]: true,
  // Stateless imports the table and bucket with Fn::ImportValue, which also stops the stateful stack
  // from dropping an export still in use. Explicit, so a CDK upgrade cannot change it silently.
  [DEFAULT_CROSS_STACK_REFERENCES]: "strong",
  // Findings of the built-in CloudFormation template validation fail the synth instead of warning.
  [VALIDATE_AGAINST_DEFAULT_RULES]: true,
} as const;

/** Retention of every CloudWatch log group (functions, API access logs); matches the S3 `logs/` expiry. */
export const LOG_RETENTION = RetentionDays.THREE_MONTHS;

/** How long a saved CLI session is kept for a retry to take up. */
export const SESSION_RETENTION_DAYS = 7;

export const bucketDefaults = {
  encryption: BucketEncryption.S3_MANAGED,
  blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
  objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
  enforceSSL: true,
  minimumTLSVersion: 1.2,
  lifecycleRules: [
    { id: "expire-logs", prefix: "logs/", expiration: Duration.days(90) },
    // A saved CLI session (a transcript) is kept for its task's retries only.
    { id: "expire-sessions", prefix: "sessions/", expiration: Duration.days(SESSION_RETENTION_DAYS) },
  ],
} satisfies BucketProps;

export const tableDefaults = {
  billing: Billing.onDemand(),
  pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
  timeToLiveAttribute: TABLE.ttlAttribute,
} as const satisfies Partial<TablePropsV2>;

export const queueDefaults = {
  enforceSSL: true,
  encryption: QueueEncryption.SQS_MANAGED,
} as const satisfies QueueProps;

export const topicDefaults = { enforceSSL: true } as const satisfies TopicProps;

/**
 * Graceful stop of a Fargate worker. On SIGTERM (scale-in or a deployment replacing the task) the worker
 * takes no more work, lets running jobs finish for `drainSeconds` (SWITCHYARD_DRAIN_SECONDS), then hands the
 * rest back and reports itself stopped. ECS sends SIGKILL `stopTimeoutSeconds` after SIGTERM; Fargate caps
 * that at 120 s, so the drain gets 90 s and the hand-back (a few DynamoDB writes) the remaining 30 s.
 */
export const workerStop = { drainSeconds: 90, stopTimeoutSeconds: 120 } as const;

export const functionDefaults = {
  runtime: Runtime.NODEJS_22_X,
  architecture: Architecture.ARM_64,
  memorySize: 256,
  timeout: Duration.seconds(10),
  tracing: Tracing.ACTIVE,
  environment: {
    POWERTOOLS_SERVICE_NAME: "switchyard",
    POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    POWERTOOLS_LOG_LEVEL: "INFO",
    NODE_OPTIONS: "--enable-source-maps",
  },
  bundling: {
    format: OutputFormat.ESM,
    minify: true,
    sourceMap: true,
    sourcesContent: false,
    mainFields: ["module", "main"],
    // ESM output: give bundled CommonJS dependencies a `require`.
    banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
} satisfies NodejsFunctionProps;
