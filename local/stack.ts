import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { loadSchedulerConfig } from "../core/config.ts";
import type { Deps } from "../core/deps.ts";
import { ENV, localCredentialsVariable } from "../core/names.ts";
import { tick } from "../core/tick.ts";
import { depsFromEnv } from "../functions/_shared/composition.ts";
import { type LocalEndpoints, localClients } from "./aws-clients.ts";
import { startDynamoDbLocal } from "./dynamodb-local.ts";
import { startFauxqsServer } from "./fauxqs.ts";
import { startHttpServer } from "./http-server.ts";
import { createLocalResources, type LocalNames, type LocalResources } from "./resources.ts";

const ROOT = resolve(import.meta.dirname, "..");
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
  log?: Deps["log"];
}

export interface LocalStack {
  url: string;
  adminKey: string;
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
      [ENV.queueUrls]: JSON.stringify(resources.queueUrls),
      [ENV.schedulerConfig]: configPath,
      [ENV.adminKey]: adminKey,
    };
    const deps = { ...depsFromEnv(clients, env), ...(options.log ? { log: options.log } : {}) };

    const http = await startHttpServer(deps, options.port);
    stops.push(() => new Promise<void>((done) => http.server.close(() => done())));

    const workers = (options.workers === false ? [] : config.pools).map(
      (pool) =>
        new SupervisedWorker(pool.name, {
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
        }),
    );
    stops.push(() => Promise.all(workers.map((w) => w.stop())).then(() => undefined));

    const ticking = tickLoop(deps);
    stops.push(ticking.stop);

    const workerPid = (pool: string) => workers.find((w) => w.pool === pool)?.pid;
    return { url: http.url, adminKey, deps, resources, workerPid, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

const withoutCredentials = (env: NodeJS.ProcessEnv) =>
  Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith(localCredentialsVariable(""))));

/**
 * One pool's worker process, restarted a second after it dies unexpectedly (as ECS replaces a stopped
 * task). The CLI processes it started may outlive it, as on a Fargate host they would not.
 */
class SupervisedWorker {
  private child!: ChildProcess;
  private stopping = false;

  constructor(
    readonly pool: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.start();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private start(): void {
    const child = spawn(process.execPath, ["--import", "tsx", resolve(ROOT, "containers/worker/main.ts")], {
      cwd: ROOT,
      env: this.env,
      stdio: ["ignore", "inherit", "inherit"],
    });
    // A worker must never outlive the stack.
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    child.once("exit", () => {
      process.off("exit", killOnExit);
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
