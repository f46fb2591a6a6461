/**
 * The parts that run on their own (the tick, the events relay) report how they do, for GET /v2/status: one
 * item each, written at most every HEARTBEAT_SECONDS by each process (the tick runs every minute on AWS,
 * every second locally), so that reporting costs next to nothing.
 */
import type { Deps } from "./deps.ts";
import type { DomainEvent } from "./events.ts";
import type { HeartbeatPart, HeartbeatStore } from "./ports.ts";

export const HEARTBEAT_SECONDS = 30;

/** Per store (a process's), when each part last reported. */
const reported = new WeakMap<object, Map<HeartbeatPart, number>>();

/** Reports a part's figures now, unless this process did less than HEARTBEAT_SECONDS ago; never throws. */
export async function heartbeat(
  deps: { heartbeats: HeartbeatStore } & Pick<Deps, "clock" | "log">,
  part: HeartbeatPart,
  figures: Record<string, number>,
): Promise<void> {
  const last = reported.get(deps.heartbeats) ?? new Map<HeartbeatPart, number>();
  reported.set(deps.heartbeats, last);
  const now = deps.clock.now();
  if (now.getTime() - (last.get(part) ?? Number.NEGATIVE_INFINITY) < HEARTBEAT_SECONDS * 1000) return;
  last.set(part, now.getTime());
  await deps.heartbeats.recordHeartbeat(part, { at: now.toISOString(), ...figures }).catch((err: unknown) => {
    last.delete(part);
    deps.log.warn("a heartbeat was not recorded", { part, error: String(err) });
  });
}

/** The events relay's report of a batch it published: how long its oldest event waited (its lag). */
export function relayed(
  deps: { heartbeats: HeartbeatStore } & Pick<Deps, "clock" | "log">,
  events: DomainEvent[],
): Promise<void> {
  const oldest = Math.min(...events.map((e) => Date.parse(e.time)));
  const lag = Math.max(0, (deps.clock.now().getTime() - oldest) / 1000);
  return heartbeat(deps, "events-relay", {
    lag_seconds: Math.round(lag * 10) / 10,
    published: events.length,
  });
}
