import { readFileSync } from "node:fs";
import { CfnOutput, Duration, Stack, type StackProps } from "aws-cdk-lib";
import type { ITableV2 } from "aws-cdk-lib/aws-dynamodb";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import { Topic } from "aws-cdk-lib/aws-sns";
import { ParameterTier, StringParameter } from "aws-cdk-lib/aws-ssm";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import { HEARTBEAT_PARTITION } from "../adapters/table/keys.ts";
import { isCliPool, type SchedulerConfig } from "../core/config.ts";
import { CALLBACK_FILTER_POLICY, WORKFLOW_FILTER_POLICY } from "../core/events.ts";
import {
  CALLBACK_FUNCTION_TIMEOUT_SECONDS,
  ENV,
  POD_LAUNCH_TIMEOUT_SECONDS,
  WORKER_CLAIM_WAIT_SECONDS,
} from "../core/names.ts";
import { ROUTE_GROUPS, type RouteGroup } from "../functions/_shared/routes.ts";

/** Every API function runs the same entry; API Gateway sends each the routes of its group. */
const API_ENTRY = "functions/api/handler.ts";

import { Alarms } from "./constructs/alarms.ts";
import { EventQueue } from "./constructs/event-queue.ts";
import { EventsRelay, REPLAY_TIMEOUT_SECONDS } from "./constructs/events-relay.ts";
import { PodCompute } from "./constructs/pod-compute.ts";
import { PoolQueues } from "./constructs/pool-queues.ts";
import { RunStreamApi } from "./constructs/run-stream-api.ts";
import { SchedulerApi } from "./constructs/scheduler-api.ts";
import { SwitchyardFunction } from "./constructs/switchyard-function.ts";
import { WorkerServices } from "./constructs/worker-services.ts";
import { GRANT_WILDCARD_FINDINGS, GRANT_WILDCARDS } from "./nag.ts";
import { topicDefaults } from "./secure-defaults.ts";

/** SSM's largest parameter (the advanced tier; the standard one holds 4 KB). */
const PARAMETER_MAX_BYTES = 8192;

/** The scheduler config file as an SSM parameter, in the tier its size needs. */
function runtimeConfigParameter(scope: Construct, configFile: string): StringParameter {
  const text = readFileSync(configFile, "utf8");
  const bytes = Buffer.byteLength(text);
  if (bytes > PARAMETER_MAX_BYTES) {
    throw new Error(
      `${configFile}: ${bytes} bytes; a reloadable config holds at most ${PARAMETER_MAX_BYTES}`,
    );
  }
  return new StringParameter(scope, "RuntimeConfig", {
    description: "The scheduler config (YAML) that POST /v2/reload reads",
    stringValue: text,
    tier: bytes > 4096 ? ParameterTier.ADVANCED : ParameterTier.STANDARD,
  });
}

/** What a function may use of the shared resources. */
interface FunctionAccess {
  readonly timeout?: Duration;
  /**
   * The table's items, the bucket, publishing to the events topic, sending to the pool queues.
   * @default table, bucket and dispatch: events reach the topic only through the relay
   */
  readonly access?: readonly ("table" | "bucket" | "publish" | "dispatch")[];
}

export interface StatelessStackProps extends StackProps {
  readonly table: ITableV2;
  readonly bucket: IBucket;
  readonly adminKey: ISecret;
  /** The HMAC key that signs callbacks (stateful: receivers verify with it). */
  readonly callbackKey: ISecret;
  /** The pools (queues, services) and the API's settings; bundled into every function. */
  readonly config: SchedulerConfig;
  /** The scheduler config file `config` came from (the worker image bakes one; they must agree). */
  readonly configFile: string;
  /** `tool/account` -> the secret with that account's credentials (stateful PoolCredentials). */
  readonly credentials: ReadonlyMap<string, ISecret>;
  /**
   * Whether to create the Fargate worker services, with their VPC, cluster and image. Off for LocalStack's
   * free plan, which has no ECS or ECR. @default true
   */
  readonly workers?: boolean;
}

/**
 * Everything that can be replaced freely: queues, topic, functions, API, the tick schedule, the worker
 * services and the alarms.
 */
export class StatelessStack extends Stack {
  readonly api: SchedulerApi;
  readonly queues: PoolQueues;
  readonly topic: Topic;
  readonly handlers: Readonly<Record<RouteGroup, SwitchyardFunction>>;
  readonly tick: SwitchyardFunction;
  /** Every function of the stack, by construct id (Api-tasks, Tick, EventsRelay, Callbacks, ...). */
  readonly functions: ReadonlyMap<string, SwitchyardFunction>;
  readonly relay: EventsRelay;
  readonly callbacks: EventQueue;
  /** The workflows function's queue: node tasks' starts and ends. */
  readonly workflowEvents: EventQueue;
  /** Workflow runs' live results stream (a WebSocket API). */
  readonly runStream: RunStreamApi;
  /** Absent when `workers` is false. */
  readonly workers?: WorkerServices;
  /** The container pools' pods; absent without container pools or without `workers`. */
  readonly pods?: PodCompute;
  readonly alarms: Alarms;
  /** The config a reload reads: the deployed file, which an operator may edit (a deploy sets it back). */
  readonly configParameter: StringParameter;
  /** The scheduler config file the stack was made from. */
  readonly configFile: string;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { table, bucket, adminKey, config, configFile } = props;
    this.configFile = configFile;
    const { pools } = config;

    this.queues = new PoolQueues(this, "Pools", { pools });
    this.topic = new Topic(this, "Events", topicDefaults);
    new CfnOutput(this, "EventsTopicArn", {
      description: "SNS topic of every task and run event (message attributes tenant, pool, status, type)",
      value: this.topic.topicArn,
    });

    const environment = {
      [ENV.tableName]: table.tableName,
      [ENV.bucketName]: bucket.bucketName,
      [ENV.topicArn]: this.topic.topicArn,
      [ENV.queueUrls]: this.toJsonString(
        Object.fromEntries([...this.queues.queues].map(([pool, queue]) => [pool, queue.queueUrl])),
      ),
    };
    /** A function with the shared environment and the access it needs (FunctionAccess). */
    const newFunction = (id: string, entry: string, options: FunctionAccess = {}) => {
      const { timeout, access = ["table", "bucket", "dispatch"] } = options;
      const fn = new SwitchyardFunction(this, id, { entry, config, environment, timeout });
      if (access.includes("table")) table.grantReadWriteData(fn);
      if (access.includes("bucket")) bucket.grantReadWrite(fn);
      if (access.includes("table") || access.includes("bucket")) {
        NagSuppressions.addResourceSuppressions(
          fn,
          [{ id: "AwsSolutions-IAM5", reason: GRANT_WILDCARDS, appliesTo: GRANT_WILDCARD_FINDINGS }],
          true,
        );
      }
      if (access.includes("publish")) this.topic.grantPublish(fn);
      if (access.includes("dispatch")) {
        for (const queue of this.queues.queues.values()) queue.grantSendMessages(fn);
      }
      return fn;
    };

    this.handlers = Object.fromEntries(
      ROUTE_GROUPS.map((group) => {
        // A self-hosted worker's claim long-polls its pool's queue: up to WORKER_CLAIM_WAIT_SECONDS, then claims.
        const timeout = group === "workers" ? Duration.seconds(WORKER_CLAIM_WAIT_SECONDS + 10) : undefined;
        const fn = newFunction(`Api-${group}`, API_ENTRY, { timeout });
        fn.addEnvironment(ENV.adminKeySecret, adminKey.secretArn);
        adminKey.grantRead(fn);
        return [group, fn];
      }),
    ) as Record<RouteGroup, SwitchyardFunction>;
    this.configParameter = runtimeConfigParameter(this, configFile);
    // A reload (POST /v2/reload, a route of the pools group) reads it; every function takes what it applied.
    this.handlers.pools.addEnvironment(ENV.configParameter, this.configParameter.parameterName);
    this.configParameter.grantRead(this.handlers.pools);
    // GET /v2/status (the pools group) counts and looks at each pool's dead letters.
    for (const [pool, dlq] of this.queues.dlqs) {
      this.queues.queues.get(pool)?.grant(this.handlers.pools, "sqs:GetQueueAttributes");
      dlq.grant(this.handlers.pools, "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage");
    }
    // Self-hosted workers take their pools' work through the workers group (POST /v2/worker/claims).
    for (const queue of this.queues.queues.values()) queue.grantConsumeMessages(this.handlers.workers);
    new CfnOutput(this, "ConfigParameter", {
      description:
        "SSM parameter holding the scheduler config a reload applies (edit it, then POST /v2/reload)",
      value: this.configParameter.parameterName,
    });
    this.api = new SchedulerApi(this, "Http", { handlers: this.handlers, throttle: config.api.throttle });
    new CfnOutput(this, "ApiUrl", {
      description: "Base URL of the API; routes are under /v2",
      value: this.api.api.url,
    });

    // The tick: due tasks, expired leases, pool pumps. A missed tick only delays work, so no retries.
    this.tick = newFunction("Tick", "functions/tick.ts", { timeout: Duration.seconds(55) });
    new Rule(this, "TickSchedule", {
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(this.tick, { retryAttempts: 0 })],
    });

    // The outbox relay: the table's stream brings new event items, the relay publishes them to the topic.
    // It reads only the stream (granted by its event source) and publishes; so does its replay.
    const relayFunction = newFunction("EventsRelay", "functions/events-relay.ts", {
      timeout: Duration.seconds(30),
      access: ["publish"],
    });
    // Its one write: its heartbeat item (GET /v2/status shows its lag).
    relayFunction.addToRolePolicy(
      new PolicyStatement({
        actions: ["dynamodb:PutItem"],
        resources: [table.tableArn],
        conditions: { "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": [HEARTBEAT_PARTITION] } },
      }),
    );
    this.relay = new EventsRelay(this, "Relay", {
      table,
      handler: relayFunction,
      replay: newFunction("EventsReplay", "functions/events-replay.ts", {
        timeout: Duration.seconds(REPLAY_TIMEOUT_SECONDS),
        access: ["publish"],
      }),
    });

    // Callbacks: run-end events reach the callback queue, whose function POSTs the signed webhooks. It reads
    // the tasks (store) and the signing key, and delays its own messages to back off.
    const callbacks = newFunction("Callbacks", "functions/callbacks.ts", {
      timeout: Duration.seconds(CALLBACK_FUNCTION_TIMEOUT_SECONDS),
      access: ["table"],
    });
    this.callbacks = new EventQueue(this, "CallbackDelivery", {
      topic: this.topic,
      filterPolicy: CALLBACK_FILTER_POLICY,
      handler: callbacks,
    });
    callbacks.addEnvironment(ENV.callbackQueueUrl, this.callbacks.queue.queueUrl);
    callbacks.addEnvironment(ENV.callbackSecretArn, props.callbackKey.secretArn);
    props.callbackKey.grantRead(callbacks);

    // Workflows: node tasks' starts and ends move their runs on; the function submits and cancels tasks.
    const workflows = newFunction("Workflows", "functions/workflows.ts", {
      timeout: Duration.seconds(CALLBACK_FUNCTION_TIMEOUT_SECONDS),
    });
    this.workflowEvents = new EventQueue(this, "WorkflowEvents", {
      topic: this.topic,
      filterPolicy: WORKFLOW_FILTER_POLICY,
      handler: workflows,
    });

    // Runs' live results: a WebSocket API whose $connect keeps the connection with its run, and asks the
    // workflows function (through its queue) to send what the client missed. Whatever stores a run's
    // messages pushes them: the workflows function, and the workflows routes (start, cancel). Those two
    // also ask the function, on its queue, to look again later at a node its tenant's quota refused.
    const streamConnect = newFunction("RunStream", "functions/run-stream.ts", { access: ["table"] });
    streamConnect.addEnvironment(ENV.adminKeySecret, adminKey.secretArn);
    adminKey.grantRead(streamConnect);
    for (const fn of [streamConnect, workflows, this.handlers.workflows]) {
      fn.addEnvironment(ENV.workflowQueueUrl, this.workflowEvents.queue.queueUrl);
      this.workflowEvents.queue.grantSendMessages(fn);
    }
    this.runStream = new RunStreamApi(this, "Stream", {
      connect: streamConnect,
      throttle: config.api.throttle,
    });
    for (const fn of [workflows, this.handlers.workflows]) {
      this.runStream.grantPush(fn, ENV.streamEndpoint);
      fn.addEnvironment(ENV.streamUrl, this.runStream.streamUrl);
    }
    new CfnOutput(this, "StreamUrl", {
      description: "WebSocket URL of workflow runs' live results (a run's stream_url has its ids filled in)",
      value: this.runStream.stage.url,
    });

    if (props.workers ?? true) {
      this.workers = new WorkerServices(this, "Workers", {
        pools,
        queues: this.queues.queues,
        credentials: props.credentials,
        table,
        bucket,
        environment,
        configFile,
      });
      const containerPools = pools.filter((pool) => !isCliPool(pool));
      if (containerPools.length > 0) {
        // Pods run in the workers' cluster; the API (cancel, logs), the tick (deadlines) and the launcher
        // stop them and read their logs.
        this.pods = new PodCompute(this, "Pods", {
          pools: containerPools,
          queues: this.queues.queues,
          vpc: this.workers.vpc,
          cluster: this.workers.cluster,
          launcher: newFunction("PodLauncher", "functions/pod-launcher.ts", {
            timeout: Duration.seconds(POD_LAUNCH_TIMEOUT_SECONDS),
          }),
          events: newFunction("PodEvents", "functions/pod-events.ts", { timeout: Duration.seconds(30) }),
        });
        // The workflows function cancels the pod tasks of a canceled run.
        for (const fn of [...Object.values(this.handlers), this.tick, workflows])
          this.pods.grantPodAccess(fn);
      }
    }

    // Last, so that every function above gets its error alarm (and where pods run, their settings).
    this.functions = new Map(
      this.node
        .findAll()
        .filter((c): c is SwitchyardFunction => c instanceof SwitchyardFunction)
        .map((fn) => [fn.node.id, fn]),
    );
    const { pods } = this;
    if (pods) for (const fn of this.functions.values()) fn.addEnvironment(ENV.pods, pods.settings);
    this.alarms = new Alarms(this, "Alarms", {
      queues: this.queues.queues,
      deadLetterQueues: new Map([
        ...this.queues.dlqs,
        ["callbacks", this.callbacks.dlq],
        ["workflows", this.workflowEvents.dlq],
        ["events-relay", this.relay.unreplayed],
        ...(this.pods ? [["pod-events", this.pods.undelivered] as const] : []),
      ]),
      functions: this.functions,
    });
  }
}
