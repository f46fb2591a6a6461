/**
 * Names shared by infra, functions, local and tests: one source of truth.
 * Nothing here imports the AWS SDK; it is plain data.
 */

/** Environment variables read by the composition roots (functions/_shared, containers/worker, local). */
export const ENV = {
  tableName: "SWITCHYARD_TABLE",
  bucketName: "SWITCHYARD_BUCKET",
  topicArn: "SWITCHYARD_TOPIC_ARN",
  /** JSON object: pool name -> SQS FIFO queue URL. */
  queueUrls: "SWITCHYARD_QUEUE_URLS",
  schedulerConfig: "SCHEDULER_CONFIG",
  /** On AWS: the SSM parameter holding the config a reload reads (POST /v2/reload). */
  configParameter: "SWITCHYARD_CONFIG_PARAMETER",
  /** How often (seconds) a process looks for a reloaded config; 30 unless set (core/live-config.ts). */
  configRefreshSeconds: "SWITCHYARD_CONFIG_REFRESH_SECONDS",
  adminKey: "SCHEDULER_ADMIN_KEY",
  /** On AWS: the Secrets Manager secret (ARN) holding the admin key, read once per cold start. */
  adminKeySecret: "SCHEDULER_ADMIN_KEY_SECRET",
  port: "PORT",
  /** The pool a worker process serves. */
  pool: "SWITCHYARD_POOL",
  /** A worker's SQS long-poll wait, in seconds. */
  waitSeconds: "SWITCHYARD_WAIT_SECONDS",
  /** Seconds a stopping worker lets running jobs finish before handing them back (Fargate gives 30–120). */
  drainSeconds: "SWITCHYARD_DRAIN_SECONDS",
  /** How often (seconds) a running job's CLI session is saved, for a lost run's retry to resume; 120 unless set. */
  sessionCheckpointSeconds: "SWITCHYARD_SESSION_CHECKPOINT_SECONDS",
  /** A worker's pool account credentials: a JSON object of env vars for the CLI (ECS injects the secret). */
  credentials: "SWITCHYARD_CREDENTIALS",
  /** A self-hosted worker's key (POST /v2/workers): the worker then works through the API at SWITCHYARD_URL. */
  workerKey: "SWITCHYARD_WORKER_KEY",
  apiUrl: "SWITCHYARD_URL",
  dataDir: "SWITCHYARD_DATA_DIR",
  version: "SWITCHYARD_VERSION",
  /** "true" lets callbacks reach loopback hosts (and plain http to them): the local stack only, never AWS. */
  allowLoopbackCallbacks: "SWITCHYARD_ALLOW_LOOPBACK_CALLBACKS",
  /** The HMAC-SHA256 key that signs callbacks (local stack, tests). */
  callbackSecret: "SWITCHYARD_CALLBACK_SECRET",
  /** On AWS: the Secrets Manager secret (ARN) holding the callback signing key, read once per cold start. */
  callbackSecretArn: "SWITCHYARD_CALLBACK_SECRET_ARN",
  /** The callback function's SQS queue (subscribed to the topic): failed deliveries are delayed on it. */
  callbackQueueUrl: "SWITCHYARD_CALLBACK_QUEUE_URL",
  /** Seconds before a failed callback is tried again; doubles per attempt (default 60). */
  callbackRetrySeconds: "SWITCHYARD_CALLBACK_RETRY_SECONDS",
  /** On AWS: where container pools' pods run and log (JSON: cluster, subnets, roles, log groups). */
  pods: "SWITCHYARD_PODS",
  /** Where clients open a run's live results stream, with `{id}` and `{run_id}` to fill in. */
  streamUrl: "SWITCHYARD_STREAM_URL",
  /** On AWS: the WebSocket API's management endpoint, through which runs' streams are pushed. */
  streamEndpoint: "SWITCHYARD_STREAM_ENDPOINT",
  /** The workflows function's SQS queue: a stream connection that opens asks it for what it missed. */
  workflowQueueUrl: "SWITCHYARD_WORKFLOW_QUEUE_URL",
} as const;

/**
 * The longest a self-hosted worker's claim long-polls its pool's queue (SQS allows 20 s): the workers
 * functions' timeout on AWS leaves room for it and the claims after it, under API Gateway's 29 s.
 */
export const WORKER_CLAIM_WAIT_SECONDS = 15;

/** Deliveries of one callback event before its message moves to the callback DLQ (the queue's maxReceiveCount). */
export const CALLBACK_MAX_RECEIVES = 5;

/** The callback function's timeout on AWS; the local deliverer runs the same handler. */
export const CALLBACK_FUNCTION_TIMEOUT_SECONDS = 30;

/** The pod launcher's timeout on AWS (the local stack runs the same handler): a RunTask and two writes. */
export const POD_LAUNCH_TIMEOUT_SECONDS = 30;

/** Queue settings, applied alike by the CDK stack and the local stack. */
export const QUEUE_SETTINGS = {
  /**
   * A pool's FIFO work queue: a received message stays hidden for one lease of its pool. High throughput
   * mode: deduplication and the throughput limit apply per message group (a run id, or a concurrency
   * key), so a queue scales with its groups instead of stopping at 300 requests a second per action.
   */
  pool: {
    maxReceiveCount: 5,
    visibilitySeconds: (pool: { lease_seconds: number }) => pool.lease_seconds,
    deduplicationScope: "messageGroup",
    fifoThroughputLimit: "perMessageGroupId",
  },
  /**
   * The callback and workflows functions' event queues: six times the functions' timeout (the same),
   * AWS's advice for Lambda event sources.
   */
  eventQueue: {
    maxReceiveCount: CALLBACK_MAX_RECEIVES,
    visibilitySeconds: 6 * CALLBACK_FUNCTION_TIMEOUT_SECONDS,
  },
  /** How long a dead-letter queue keeps a message (SQS's longest). */
  deadLetterRetentionSeconds: 14 * 86_400,
} as const;

/** The single DynamoDB table: generic keys plus four sparse GSIs (see adapters/aws/dynamo-store.ts). */
export const TABLE = {
  partitionKey: "pk",
  sortKey: "sk",
  ttlAttribute: "expires_at",
  indexes: {
    /**
     * Listing by tenant and status: gsi1pk = `T#<tenant>#<kind>` (tasks and runs: `…#<shard>`, merged by
     * the listings), gsi1sk = `<status>#<time>#<id>`.
     */
    byTenant: { name: "by-tenant", partitionKey: "gsi1pk", sortKey: "gsi1sk" },
    /** Ready queue of a pool: gsi2pk = `READY#<pool>`, gsi2sk = `<9-priority>#<ready time>#<uuid>`. Only queued tasks. */
    ready: { name: "ready", partitionKey: "gsi2pk", sortKey: "gsi2sk" },
    /** Due times, sharded: gsi3pk = `DUE#<shard>`, gsi3sk = `<due time>#<uuid>`. */
    due: { name: "due", partitionKey: "gsi3pk", sortKey: "gsi3sk" },
    /**
     * A concurrency key's tasks (an account's): gsi4pk = `CK#<tenant>#<key>`, gsi4sk = `<create time>#<uuid>`.
     * Only tasks with a concurrency key.
     */
    byKey: { name: "by-key", partitionKey: "gsi4pk", sortKey: "gsi4sk" },
  },
} as const;

/**
 * Sort-key prefix of the event items the store appends to their task's partition (the outbox): the events
 * relay reads only these from the table's stream.
 */
export const EVENT_SORT_KEY_PREFIX = "EVENT#";

/**
 * Number of shards of the due index; the tick reads them all at once. A task's shard is a hash of its
 * uuid, so a task written under fewer shards is still read (its shard is among these) until it moves.
 */
export const DUE_SHARDS = 16;

/** Locally, where `npm start` reads an account's credentials (JSON) for the pools of that account. */
export const localCredentialsVariable = (account: string) =>
  `SWITCHYARD_CREDENTIALS_${account.toUpperCase().replaceAll("-", "_")}`;

/** Physical names used by the local stack only (on AWS, CDK generates names). */
export const LOCAL_NAMES = {
  table: "switchyard",
  bucket: "switchyard-artifacts",
  topic: "switchyard-events",
  queue: (pool: string) => `switchyard-${pool}.fifo`,
} as const;
