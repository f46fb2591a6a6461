import { randomUUID } from "node:crypto";
import type { SchedulerConfig } from "./config.ts";
import type {
  AppliedConfigStore,
  BlobStore,
  Clock,
  ConfigSource,
  ContainerRunner,
  CounterStore,
  EventStore,
  HeartbeatStore,
  IdempotencyStore,
  Ids,
  PodLogs,
  PoolQueue,
  Resolver,
  Store,
  StreamConnections,
  TaskStore,
  TemplateStore,
  TenantStore,
  WebhookSender,
  WorkerStore,
  WorkflowQueue,
  WorkflowRunStore,
  WorkflowStore,
} from "./ports.ts";
import type { CallbackPolicy } from "./ssrf.ts";

/** What the use cases need, built once per process by the composition root (runtime/). */
export interface Deps {
  tasks: TaskStore;
  counters: CounterStore;
  events: EventStore;
  tenants: TenantStore;
  workers: WorkerStore;
  idempotency: IdempotencyStore;
  templates: TemplateStore;
  workflows: WorkflowStore;
  workflowRuns: WorkflowRunStore;
  /** The configuration a reload applied (core/live-config.ts). */
  configs: AppliedConfigStore;
  /** Where a reload reads the config. */
  configSource: ConfigSource;
  /** What the tick and the events relay last reported of themselves. */
  heartbeats: HeartbeatStore;
  queue: PoolQueue;
  blobs: BlobStore;
  /** The connections of runs' live results streams (core/run-stream.ts). */
  streams: StreamConnections;
  /** The workflows function's own queue: streams to push, nodes to look at again. */
  workflowQueue: WorkflowQueue;
  /** Where clients open a run's stream: `{id}` and `{run_id}` filled in (the WebSocket API, or the local server). */
  streamUrl: string;
  /** The pods of container pools, and their logs. */
  containers: ContainerRunner;
  podLogs: PodLogs;
  clock: Clock;
  ids: Ids;
  /** Uniform in [0, 1): retry jitter. */
  random: () => number;
  /** The pools and limits: as deployed, or as a reload applied them since (refreshConfig). */
  config: SchedulerConfig;
  /** The admin key; tenant keys live hashed in the tenant store. */
  adminKey: string;
  /** What callback URLs may reach (core/ssrf.ts); loopback only on the local stack. */
  callbackPolicy: CallbackPolicy;
  /** The HMAC-SHA256 key that signs callbacks; empty where no callbacks are delivered. */
  callbackSecret: string;
  /** Name resolution for the SSRF guard, and the client that delivers callbacks. */
  resolve: Resolver;
  webhooks: WebhookSender;
  log: Pick<Console, "info" | "warn" | "error">;
}

export const systemClock: Clock = { now: () => new Date() };
export const randomIds: Ids = { uuid: () => randomUUID() };

/** The store ports of Deps, all served by one store. */
export const storePorts = (store: Store) => ({
  tasks: store,
  counters: store,
  events: store,
  tenants: store,
  workers: store,
  idempotency: store,
  templates: store,
  workflows: store,
  workflowRuns: store,
  configs: store,
  heartbeats: store,
});
