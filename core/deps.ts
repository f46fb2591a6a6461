import { randomUUID } from "node:crypto";
import type { SchedulerConfig } from "./config.ts";
import type { BlobStore, Clock, Ids, PoolQueue, TaskStore, TenantStore } from "./ports.ts";
import type { CallbackPolicy } from "./ssrf.ts";

/** What the use cases need, built once by a composition root (functions/_shared, the worker, local/). */
export interface Deps {
  store: TaskStore & TenantStore;
  queue: PoolQueue;
  blobs: BlobStore;
  clock: Clock;
  ids: Ids;
  /** Uniform in [0, 1): retry jitter. */
  random: () => number;
  config: SchedulerConfig;
  /** The admin key; tenant keys live hashed in the tenant store. */
  adminKey: string;
  /** What callback URLs may reach (core/ssrf.ts); loopback only on the local stack. */
  callbackPolicy: CallbackPolicy;
  /** The HMAC-SHA256 key that signs callbacks; empty where no callbacks are delivered. */
  callbackSecret: string;
  log: Pick<Console, "info" | "warn" | "error">;
}

export const systemClock: Clock = { now: () => new Date() };
export const randomIds: Ids = { uuid: () => randomUUID() };
