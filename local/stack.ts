import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { capacityWarnings, hasManagedWorkers, isCliPool } from "../core/config.ts";
import type { Deps } from "../core/deps.ts";
import { CALLBACK_MAX_RECEIVES, ENV, localCredentialsVariable } from "../core/names.ts";
import { tick } from "../core/tick.ts";
import { callbacksHandler, retrySecondsFrom } from "../functions/callbacks.ts";
import { relayHandler } from "../functions/events-relay.ts";
import { podEventsHandler } from "../functions/pod-events.ts";
import { podLauncherHandler } from "../functions/pod-launcher.ts";
import { workflowsHandler } from "../functions/workflows.ts";
import {
  callbackQueueFromEnv,
  configRefreshSecondsFrom,
  depsFromEnv,
  eventBusFromEnv,
  keepConfigFresh,
  relayBeatsFromEnv,
} from "../runtime/composition.ts";
import { processLog } from "../runtime/log.ts";
import { fileConfigSource, loadSchedulerConfig } from "../runtime/scheduler-config.ts";
import { type LocalClients, type LocalEndpoints, localClients } from "./aws-clients.ts";
import { tearDown } from "./container-teardown.ts";
import { startDynamoDbLocal } from "./dynamodb-local.ts";
import { FAULT_ENV, faultInjectorFrom } from "./faults.ts";
import { startFauxqsServer } from "./fauxqs.ts";
import { startHttpServer } from "./http-server.ts";
import { LocalPodRunner } from "./pod-runner.ts";
import { createLocalResources, type LocalNames, type LocalResources } from "./resources.ts";
import { LocalStreamSockets } from "./run-stream.ts";
import { lambdaContext, startSqsEventSource } from "./sqs-event-source.ts";
import { startStreamRelay } from "./stream-relay.ts";

const ROOT = resolve(import.meta.dirname, "..");
const WORKER_PROGRAM = resolve(ROOT, "containers/worker/main.ts");
/** The same worker with the fault injector on its AWS clients (local/faults.ts). */
const FAULT_WORKER_PROGRAM = resolve(ROOT, "local/fault-worker.ts");
const TICK_MS = 1000;
/** Locally, a stopping worker hands unfinished runs back after this long. */
const DRAIN_SECONDS = 3;

export interface LocalStackOptions {
  /** HTTP port; 0 picks a free one. */
  port: number;
  /** Defaults to the environment's SCHEDULER_ADMIN_KEY, else a new random key. */
  adminKey?: string;
  /** Scheduler config file; defaults to SCHEDULER_CONFIG or ./scheduler.config.yaml. */
  configPath?: string;
  /** Use running emulators instead of starting them (tests share one pair). */
  endpoints?: LocalEndpoints;
  /** Resource names; tests pass unique ones so that stacks do not share a table or queues. */
  names?: LocalNames;
  /** Start one worker process per pool (default true). Tests turn it off to look at the queues. */
  workers?: boolean;
  /** Extra environment for worker processes (tests put fake CLIs on PATH). */
  workerEnv?: NodeJS.ProcessEnv;
  /**
   * The worker program each pool runs; default containers/worker/main.ts, or local/fault-worker.ts when
   * the workers' environment asks for faults (SWITCHYARD_FAULTS, SWITCHYARD_CRASH_AT).
   */
  workerProgram?: string;
  /** Modules each worker process preloads with `--import` (tests capture the workers' output with one). */
  workerImports?: string[];
  /** Sees each part's SDK clients, which are kept apart (the benchmark counts requests with it). */
  observeClients?: (clients: LocalClients, role: "api" | "tick" | "events" | "callbacks") => void;
  /**
   * Let callbacks reach loopback hosts, over http too, so that a receiver on 127.0.0.1 works. Defaults to
   * SWITCHYARD_ALLOW_LOOPBACK_CALLBACKS, else true. Private and metadata addresses stay refused.
   */
  allowLoopbackCallbacks?: boolean;
  /** How often each part looks for a reloaded config; defaults to SWITCHYARD_CONFIG_REFRESH_SECONDS, else 30. */
  configRefreshSeconds?: number;
  /** The key that signs callbacks; defaults to SWITCHYARD_CALLBACK_SECRET, else a new random key. */
  callbackSecret?: string;
  /** Seconds before a failed callback is tried again, doubling; defaults to SWITCHYARD_CALLBACK_RETRY_SECONDS, else 60. */
  callbackRetrySeconds?: number;
  log?: Deps["log"];
}

export interface LocalStack {
  url: string;
  adminKey: string;
  /** The key that signs callbacks (receivers verify with it). */
  callbackSecret: string;
  deps: Deps;
  resources: LocalResources;
  /** The process id of a pool's current worker (tests kill it to prove leases). */
  workerPid(pool: string): number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts Switchyard on this machine: emulators (unless given), resources, the API, one worker
 * process per pool and the tick loop. Everything runs the same code as on AWS.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch(() => undefined);
  };
  try {
    let endpoints = options.endpoints;
    if (!endpoints) {
      const dataDir = resolve(ROOT, process.env[ENV.dataDir] ?? ".data");
      const [dynamodb, fauxqs] = await Promise.all([startDynamoDbLocal({ dataDir }), startFauxqsServer()]);
      stops.push(dynamodb.stop, fauxqs.stop);
      endpoints = { dynamodbEndpoint: dynamodb.endpoint, awsEndpoint: fauxqs.endpoint, region: "us-east-1" };
    }
    const configPath = resolve(
      options.configPath ?? process.env[ENV.schedulerConfig] ?? "scheduler.config.yaml",
    );
    const config = loadSchedulerConfig({ [ENV.schedulerConfig]: configPath });
    const clients = localClients(endpoints);
    const resources = await createLocalResources(clients, config, options.names);
    const adminKey =
      options.adminKey ?? process.env[ENV.adminKey] ?? `sy_admin_${randomBytes(24).toString("base64url")}`;
    const env: NodeJS.ProcessEnv = {
      [ENV.tableName]: resources.tableName,
      [ENV.bucketName]: resources.bucketName,
      [ENV.topicArn]: resources.topicArn,
      [ENV.callbackQueueUrl]: resources.callbackQueueUrl,
      [ENV.queueUrls]: JSON.stringify(resources.queueUrls),
      [ENV.schedulerConfig]: configPath,
      [ENV.adminKey]: adminKey,
      [ENV.allowLoopbackCallbacks]: String(
        options.allowLoopbackCallbacks ?? process.env[ENV.allowLoopbackCallbacks] !== "false",
      ),
      [ENV.configRefreshSeconds]: String(options.configRefreshSeconds ?? configRefreshSecondsFrom()),
      [ENV.workflowQueueUrl]: resources.workflowQueueUrl,
    };
    const log = options.log ?? processLog("switchyard-local");
    for (const warning of capacityWarnings(config)) log.warn(warning);
    // SWITCHYARD_FAULTS applies to the stack's own clients too (crashes only to workers: this process serves all).
    const faults = faultInjectorFrom(process.env, { crashes: false });
    const observe = (roleClients: LocalClients, role: "api" | "tick" | "events" | "callbacks") => {
      faults?.attach(Object.values(roleClients));
      options.observeClients?.(roleClients, role);
    };
    observe(clients, "api");
    // Pods run on this machine (local/pod-runner.ts): every part that starts, stops or reads one uses it.
    const podLogDir = mkdtempSync(join(tmpdir(), "switchyard-pods-"));
    const pods = new LocalPodRunner({
      logDir: podLogDir,
      deliver: (event) => podEvents(event, lambdaContext("switchyard-pod-events")),
      log,
    });
    stops.push(async () => {
      await pods.stopAll();
      rmSync(podLogDir, { recursive: true, force: true });
    });
    // Runs' streams are this process's sockets (the local server's WebSocket upgrades).
    const streams = new LocalStreamSockets();
    const localDeps = (roleClients: LocalClients): Deps => ({
      ...depsFromEnv(roleClients, log, config, env, fileConfigSource(env)),
      containers: pods,
      podLogs: pods,
      streams,
    });
    const deps = localDeps(clients);
    const podEvents = podEventsHandler(async () => deps);
    // Each part takes a reloaded config within the refresh period, as its Lambda or worker would.
    const refreshSeconds = Number(env[ENV.configRefreshSeconds]);
    const keptFresh = (roleDeps: Deps) =>
      keepConfigFresh(roleDeps, refreshSeconds).then((stop) => stops.push(async () => stop()));
    await keptFresh(deps);

    const http = await startHttpServer(deps, options.port, streams);
    stops.push(() => new Promise<void>((done) => http.server.close(() => done())));

    const workers = (options.workers === false ? [] : config.pools.filter(hasManagedWorkers)).map(
      (pool) =>
        new SupervisedWorker(
          pool.name,
          options.workerProgram ?? (wantsFaults(options.workerEnv) ? FAULT_WORKER_PROGRAM : WORKER_PROGRAM),
          options.workerImports ?? [],
          {
            // Each worker gets its own account's credentials only.
            ...withoutCredentials(process.env),
            ...withoutCredentials(options.workerEnv ?? {}),
            ...env,
            AWS_REGION: endpoints.region,
            AWS_ACCESS_KEY_ID: "local",
            AWS_SECRET_ACCESS_KEY: "local",
            AWS_ENDPOINT_URL: endpoints.awsEndpoint,
            AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodbEndpoint,
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
            POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? "WARN",
            [ENV.pool]: pool.name,
            [ENV.waitSeconds]: "1",
            [ENV.drainSeconds]: process.env[ENV.drainSeconds] ?? String(DRAIN_SECONDS),
            [ENV.credentials]:
              options.workerEnv?.[localCredentialsVariable(pool.account)] ??
              process.env[localCredentialsVariable(pool.account)] ??
              "{}",
          },
        ),
    );
    stops.push(() => Promise.all(workers.map((w) => w.stop())).then(() => undefined));

    // The tick has clients of its own, so that its requests can be told apart from the API's.
    const tickClients = localClients(endpoints);
    observe(tickClients, "tick");
    const tickDeps = localDeps(tickClients);
    await keptFresh(tickDeps);
    const ticking = tickLoop(tickDeps);
    stops.push(ticking.stop);

    // The events relay, fed from the table's stream as Lambda would feed it.
    const relayClients = localClients(endpoints);
    observe(relayClients, "events");
    const relaying = startStreamRelay(
      relayClients.dynamodb,
      resources.tableName,
      relayHandler(eventBusFromEnv(relayClients, env), relayBeatsFromEnv(relayClients, log, env)),
      log,
    );
    stops.push(relaying.stop);

    // The callback function, fed from its queue as Lambda would feed it. The signing key stays out of
    // the environment that worker processes get.
    const callbackSecret =
      options.callbackSecret ??
      process.env[ENV.callbackSecret] ??
      `whsec_${randomBytes(24).toString("base64url")}`;
    const callbackClients = localClients(endpoints);
    observe(callbackClients, "callbacks");
    const callbackDeps = { ...localDeps(callbackClients), callbackSecret };
    const retries = callbackQueueFromEnv(callbackClients, env);
    const retrySeconds = options.callbackRetrySeconds ?? retrySecondsFrom(process.env);
    const delivering = startSqsEventSource({
      functionName: "switchyard-callbacks",
      sqs: callbackClients.sqs,
      queueUrl: resources.callbackQueueUrl,
      queueArn: resources.callbackQueueArn,
      region: endpoints.region,
      handler: callbacksHandler(async () => ({
        deps: callbackDeps,
        retries,
        retrySeconds,
        maxAttempts: CALLBACK_MAX_RECEIVES,
      })),
      log: callbackDeps.log,
    });
    stops.push(delivering.stop);

    // The workflows function, fed from its queue: node tasks' starts and ends move their runs on.
    const following = startSqsEventSource({
      functionName: "switchyard-workflows",
      sqs: clients.sqs,
      queueUrl: resources.workflowQueueUrl,
      queueArn: resources.workflowQueueArn,
      region: endpoints.region,
      handler: workflowsHandler(async () => deps),
      log,
    });
    stops.push(following.stop);

    // Container pools have no workers: the pod launcher takes their dispatches, as on AWS.
    const launch = podLauncherHandler(async () => deps);
    for (const pool of config.pools.filter((p) => !isCliPool(p))) {
      const launching = startSqsEventSource({
        sqs: clients.sqs,
        queueUrl: resources.queueUrls[pool.name] as string,
        queueArn: `arn:aws:sqs:${endpoints.region}:000000000000:${resources.queueUrls[pool.name]?.split("/").at(-1)}`,
        region: endpoints.region,
        functionName: "switchyard-pod-launcher",
        handler: launch,
        log,
      });
      stops.push(launching.stop);
    }

    const workerPid = (pool: string) => workers.find((w) => w.pool === pool)?.pid;
    return { url: http.url, adminKey, callbackSecret, deps, resources, workerPid, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

const wantsFaults = (env: NodeJS.ProcessEnv = {}) =>
  [FAULT_ENV.rules, FAULT_ENV.crashAt].some((name) => env[name] ?? process.env[name]);

const withoutCredentials = (env: NodeJS.ProcessEnv) =>
  Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith(localCredentialsVariable(""))));

/**
 * One pool's worker process, restarted a second after it dies unexpectedly (as ECS replaces a stopped
 * task). Each run of it has a temp root of its own (its TMPDIR, where its jobs' dirs are made): when it
 * ends, whatever still runs there is killed, as a container's end kills its processes.
 */
class SupervisedWorker {
  private child!: ChildProcess;
  private stopping = false;

  constructor(
    readonly pool: string,
    private readonly program: string,
    private readonly imports: string[],
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.start();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private start(): void {
    const preloads = ["tsx", ...this.imports].flatMap((module) => ["--import", module]);
    const root = mkdtempSync(join(tmpdir(), `switchyard-worker-${this.pool}-`));
    const child = spawn(process.execPath, [...preloads, this.program], {
      cwd: ROOT,
      env: { ...this.env, TMPDIR: root },
      stdio: ["ignore", "inherit", "inherit"],
    });
    // A worker, and its jobs, must never outlive the stack.
    const killOnExit = () => {
      child.kill("SIGKILL");
      tearDown(root);
    };
    process.once("exit", killOnExit);
    child.once("exit", () => {
      process.off("exit", killOnExit);
      tearDown(root);
      if (!this.stopping) setTimeout(() => this.stopping || this.start(), 1000);
    });
    this.child = child;
  }

  /** SIGTERM: the worker drains; SIGKILL if it has not exited well after the drain. */
  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), (DRAIN_SECONDS + 10) * 1000);
    await exited;
    clearTimeout(timer);
  }
}

/** Runs the tick every second, one at a time. */
function tickLoop(deps: Deps): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      await tick(deps).catch((err: unknown) => deps.log.error("tick failed", { error: String(err) }));
      await new Promise((done) => setTimeout(done, TICK_MS));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}
