/**
 * GET /v2/status: each part of the scheduler, whether it is well, and what is wrong with it, from what
 * is cheap to read: the table (one query of the heartbeats), each pool's dead-letter queue, the live
 * workers and queued counts, and the heartbeats of the tick and the events relay.
 */
import { type Principal, requireScope } from "./auth.ts";
import { isCliPool } from "./config.ts";
import type { Deps } from "./deps.ts";
import type { Heartbeat } from "./ports.ts";
import { liveWorkers } from "./workers.ts";

export type PartStatus = "ok" | "degraded" | "down";

export interface Component {
  name: string;
  status: PartStatus;
  /** What is wrong, or what shows it is well. */
  detail: string;
}

export interface SystemStatus {
  /** down when the table is; degraded when any part is not ok. */
  status: PartStatus;
  components: Component[];
}

/** The tick runs every minute on AWS: three missed runs make it degraded. */
export const TICK_LATE_SECONDS = 180;
/** Events that waited longer than this for the relay make it degraded. */
export const RELAY_LAG_SECONDS = 60;

const ago = (beat: Heartbeat, now: number) => Math.max(0, Math.round((now - Date.parse(beat.at)) / 1000));
const failed = (name: string, err: unknown): Component => ({
  name,
  status: "down",
  detail: `could not be read: ${String(err)}`,
});

export async function systemStatus(
  deps: Pick<Deps, "heartbeats" | "queue" | "workers" | "counters" | "config" | "clock">,
  principal: Principal,
): Promise<SystemStatus> {
  requireScope(principal, "admin");
  const now = deps.clock.now().getTime();
  const { pools } = deps.config;
  const [beats, queues, workers] = await Promise.all([
    deps.heartbeats.heartbeats().then(
      (found) => ({ found }),
      (err: unknown) => ({ err }),
    ),
    Promise.all(pools.map((pool) => deadLetterComponent(deps, pool.name))),
    workerComponents(deps),
  ]);
  const table: Component =
    "err" in beats ? failed("table", beats.err) : { name: "table", status: "ok", detail: "answers" };
  const found = "found" in beats ? beats.found : {};
  const tick = found.tick;
  const relay = found["events-relay"];
  const components: Component[] = [
    table,
    ...queues,
    ...workers,
    !tick
      ? { name: "tick", status: "degraded", detail: "has not reported a run yet" }
      : {
          name: "tick",
          status: ago(tick, now) > TICK_LATE_SECONDS ? "degraded" : "ok",
          detail: `last reported a run ${ago(tick, now)} s ago (it reports at most every 30 s), which took ${tick.duration_ms} ms`,
        },
    !relay
      ? { name: "events-relay", status: "ok", detail: "has relayed no event yet" }
      : {
          name: "events-relay",
          status: Number(relay.lag_seconds) > RELAY_LAG_SECONDS ? "degraded" : "ok",
          detail: `its last batch (${ago(relay, now)} s ago) published events ${relay.lag_seconds} s after they happened`,
        },
  ];
  const status: PartStatus =
    table.status === "down" ? "down" : components.every((c) => c.status === "ok") ? "ok" : "degraded";
  return { status, components };
}

async function deadLetterComponent(deps: Pick<Deps, "queue">, pool: string): Promise<Component> {
  const name = `queue:${pool}`;
  try {
    const { count, oldestAgeSeconds } = await deps.queue.deadLetters(pool);
    if (count === 0) return { name, status: "ok", detail: "no dead letters" };
    const oldest = oldestAgeSeconds === undefined ? "" : `, the oldest first sent ${oldestAgeSeconds} s ago`;
    return {
      name,
      status: "degraded",
      detail: `${count} dead letter${count === 1 ? "" : "s"} (dispatches no worker could take)${oldest}`,
    };
  } catch (err) {
    return failed(name, err);
  }
}

/** Per CLI pool: its live workers, degraded when tasks wait and none is there to take them. */
async function workerComponents(
  deps: Pick<Deps, "workers" | "counters" | "config" | "clock">,
): Promise<Component[]> {
  const pools = deps.config.pools.filter(isCliPool);
  const live = await liveWorkers(deps).catch(() => undefined);
  return Promise.all(
    pools.map(async (pool): Promise<Component> => {
      const name = `workers:${pool.name}`;
      if (!live) return failed(name, "the workers' records");
      const mine = live.filter((w) => w.pool === pool.name);
      const slots = mine.reduce((n, w) => n + w.slots, 0);
      const running = mine.reduce((n, w) => n + w.running, 0);
      const queued = await deps.counters.poolState(pool.name).then(
        (state) => state.queued,
        () => 0,
      );
      const detail = `${mine.length} live, ${running} of ${slots} slots running, ${queued} queued`;
      return { name, status: mine.length === 0 && queued > 0 ? "degraded" : "ok", detail };
    }),
  );
}
