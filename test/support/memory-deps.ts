import { MemoryBlobStore } from "../../adapters/memory/memory-blobs.ts";
import { MemoryContainers } from "../../adapters/memory/memory-containers.ts";
import { MemoryPoolQueue } from "../../adapters/memory/memory-queue.ts";
import { MemoryStore } from "../../adapters/memory/memory-store.ts";
import { MemoryStreams } from "../../adapters/memory/memory-streams.ts";
import { MemoryWorkflowQueue } from "../../adapters/memory/memory-workflow-queue.ts";
import { systemResolver } from "../../adapters/net/resolver.ts";
import { nodeWebhookSender } from "../../adapters/net/webhook-sender.ts";
import type { Principal } from "../../core/auth.ts";
import { type Deps, storePorts } from "../../core/deps.ts";
import { SCOPES } from "../../core/fields.ts";
import { RUN_STREAM_PATH } from "../../core/run-stream.ts";
import { parseSchedulerConfig } from "../../runtime/scheduler-config.ts";

/** A controllable clock: starts at a fixed instant and moves only when told. */
export function manualClock(start = "2026-01-01T00:00:00.000Z") {
  let now = Date.parse(start);
  return {
    now: () => new Date(now),
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/**
 * Use-case dependencies on in-memory fakes, for unit tests of core. A reload reads the config from
 * `source`, which starts as `configYaml`.
 */
export function memoryDeps(configYaml: string) {
  const source = { text: configYaml };
  const clock = manualClock();
  let n = 0;
  const queue = new MemoryPoolQueue(() => clock.now().getTime());
  const containers = new MemoryContainers();
  const streams = new MemoryStreams();
  const workflowQueue = new MemoryWorkflowQueue();
  const deps = {
    ...storePorts(new MemoryStore()),
    queue,
    blobs: new MemoryBlobStore(),
    containers,
    podLogs: containers,
    streams,
    workflowQueue,
    streamUrl: RUN_STREAM_PATH,
    clock,
    ids: { uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}` },
    config: parseSchedulerConfig(configYaml),
    configSource: { load: async () => parseSchedulerConfig(source.text) },
    random: () => 0.5,
    adminKey: "admin",
    callbackPolicy: { allowLoopback: false },
    callbackSecret: "test-callback-secret",
    resolve: systemResolver,
    webhooks: nodeWebhookSender,
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
  } satisfies Deps;
  return { deps, clock, queue, containers, streams, workflowQueue, source };
}

export const ADMIN: Principal = { kind: "admin", scopes: SCOPES };
