/**
 * Fair share: tenant A queues a flood, then tenant B a trickle, at the same priority in one small pool.
 * B's waits (submission to its run's start) against its fair share, the waits B would have with half the
 * pool to itself from the moment it arrived: its i-th task starts after ⌊i / (slots / 2)⌋ runs. Without
 * fair share B would wait behind A's whole backlog.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { runIdFor } from "../core/identifiers.ts";
import type { TaskStore } from "../core/ports.ts";
import type { LocalStack } from "../local/stack.ts";
import { percentile, round } from "./stats.ts";

/** The pool the phase runs in, alone: no other phase submits to it. */
export const FAIR_POOL = { name: "bench-fair", slots: 4 };

export const FAIR = { floodTasks: 200, trickleTasks: 20, runSeconds: 0.3 };

export interface FairShareResult {
  flood_tasks: number;
  trickle_tasks: number;
  run_seconds: number;
  /** B's waits, measured. */
  trickle_wait_p50_s: number;
  trickle_wait_p95_s: number;
  /** B's waits with half the pool its own from its arrival, at the measured mean run time. */
  fair_share_wait_p95_s: number;
  /** Measured over fair share: 1 is exactly fair. */
  trickle_p95_over_fair_share: number;
  /** The wait B's last task would have had behind A's whole remaining backlog (first come, first served). */
  fifo_wait_s: number;
  /** A's tasks started before B's last one did. */
  flood_started_before_last_trickle: number;
}

export async function measureFairShare(options: {
  stack: Pick<LocalStack, "url">;
  adminKey: string;
  store: Pick<TaskStore, "getTask" | "getRun">;
  log(message: string): void;
}): Promise<FairShareResult> {
  const { stack, adminKey, store, log } = options;
  const call = async (method: string, path: string, key: string, body?: unknown) => {
    const res = await fetch(`${stack.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
    return (JSON.parse(text) as { data: Record<string, unknown> }).data;
  };
  const tenant = async (name: string) =>
    (
      await call("POST", "/v2/tenants", adminKey, {
        name,
        rate_limit_per_minute: 100_000,
        max_queued_tasks: 10_000,
        max_submissions_per_minute: 100_000,
      })
    ).api_key as string;
  const [flood, trickle] = [await tenant("bench-flood"), await tenant("bench-trickle")];
  const submit = async (key: string, count: number) => {
    const uuids: string[] = [];
    for (let i = 0; i < count; i += 20) {
      const batch = Array.from({ length: Math.min(20, count - i) }, () =>
        call("POST", "/v2/tasks", key, { pool: FAIR_POOL.name, prompt: `fair [sleep:${FAIR.runSeconds}]` }),
      );
      uuids.push(...(await Promise.all(batch)).map((d) => d.uuid as string));
    }
    return uuids;
  };
  const floodUuids = await submit(flood, FAIR.floodTasks);
  const trickleUuids = await submit(trickle, FAIR.trickleTasks);
  log(`fair share: ${floodUuids.length} flood tasks, then ${trickleUuids.length} trickle tasks`);
  const timesOf = async (uuids: string[]) => {
    for (;;) {
      const tasks = await Promise.all(uuids.map((uuid) => store.getTask(uuid)));
      if (tasks.every((t) => t?.status === "succeeded" || t?.status === "failed")) {
        const runs = await Promise.all(uuids.map((uuid) => store.getRun(uuid, runIdFor(uuid, 1))));
        return tasks.map((t, i) => ({
          created: Date.parse(t?.create_time ?? ""),
          started: Date.parse(runs[i]?.start_time ?? ""),
          ended: Date.parse(runs[i]?.end_time ?? ""),
        }));
      }
      await sleep(500);
    }
  };
  const [floodTimes, trickleTimes] = [await timesOf(floodUuids), await timesOf(trickleUuids)];
  const waits = trickleTimes.map((t) => (t.started - t.created) / 1000);
  const all = [...floodTimes, ...trickleTimes];
  const meanRun = all.reduce((n, t) => n + (t.ended - t.started), 0) / all.length / 1000;
  // With half the pool from its arrival, B's i-th task starts after ⌊i / half⌋ runs of that pool.
  const half = FAIR_POOL.slots / 2;
  const fairWaits = trickleTimes.map((_, i) => Math.floor(i / half) * meanRun);
  const lastTrickle = Math.max(...trickleTimes.map((t) => t.started));
  const arrived = Math.min(...trickleTimes.map((t) => t.created));
  const floodLeft = floodTimes.filter((t) => t.started >= arrived).length;
  const fairP95 = percentile(fairWaits, 95);
  return {
    flood_tasks: FAIR.floodTasks,
    trickle_tasks: FAIR.trickleTasks,
    run_seconds: round(meanRun, 3),
    trickle_wait_p50_s: round(percentile(waits, 50), 2),
    trickle_wait_p95_s: round(percentile(waits, 95), 2),
    fair_share_wait_p95_s: round(fairP95, 2),
    trickle_p95_over_fair_share: round(percentile(waits, 95) / Math.max(fairP95, 0.001), 2),
    fifo_wait_s: round(((floodLeft + FAIR.trickleTasks) / FAIR_POOL.slots) * meanRun, 2),
    flood_started_before_last_trickle: floodTimes.filter((t) => t.started < lastTrickle).length,
  };
}
