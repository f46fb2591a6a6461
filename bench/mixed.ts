/**
 * The mixed workload: how good the expected waits are. Tasks of heavy-tailed run times (log-normal, the
 * instant CLIs' `[sleep:N]`) and two priorities arrive at random (Poisson) a little faster than one small
 * pool finishes them, so that a backlog builds. Every submission that has to queue is told a wait
 * (expect ± error); its first run's start gives the wait it had.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { runIdFor } from "../core/identifiers.ts";
import type { TaskStore } from "../core/ports.ts";
import type { LocalStack } from "../local/stack.ts";
import { round, seeded } from "./stats.ts";

/** The pool the phase runs in, alone: no other phase submits to it. */
export const MIXED_POOL = { name: "bench-mixed", slots: 3 };

export const MIXED = {
  /** Run times: log-normal with this median and log-spread, capped (seconds). */
  medianSeconds: 1,
  sigma: 0.9,
  capSeconds: 12,
  /** Tasks run first so that the pool has a history to estimate from. */
  historyTasks: 24,
  /** Tasks submitted at once when the arrivals begin: the backlog. */
  backlogTasks: 30,
  /** Then arrivals per second, over this many seconds: about as many as the pool finishes. */
  arrivalsPerSecond: 1.8,
  arrivalSeconds: 40,
  /**
   * The arrivals go on this much longer, unjudged, so that the last judged tasks wait in the same
   * workload as the first, not in a pool whose newcomers stopped.
   */
  tailSeconds: 25,
  /** The share of arrivals at the high priority. */
  highShare: 0.25,
  priorities: { low: 3, high: 8 },
  seed: 20261201,
};

interface Submitted {
  uuid: string;
  priority: number;
  predicted?: { expect: number; error: number };
}

export interface MixedResult {
  tasks: number;
  /** Submissions told a wait, and the share of those whose wait fell inside the band. */
  estimated: number;
  estimate_coverage: number;
  /** Mean |actual − expected| over the mean actual wait. */
  estimate_mae_ratio: number;
  mean_wait_s: number;
  mean_abs_error_s: number;
  coverage_by_priority: Record<string, number>;
  /** The pool's own calibration, as GET /v2/queues/{name}?verbose=true reports it after the phase. */
  queue_calibration: unknown;
}

export async function measureMixed(options: {
  stack: Pick<LocalStack, "url">;
  apiKey: string;
  adminKey: string;
  store: Pick<TaskStore, "getTask" | "getRun">;
  log(message: string): void;
}): Promise<MixedResult> {
  const { stack, apiKey, store, log } = options;
  const random = seeded(MIXED.seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const runSeconds = () =>
    round(Math.min(MIXED.capSeconds, MIXED.medianSeconds * Math.exp(MIXED.sigma * normal())), 1);
  const submit = async (priority: number): Promise<Submitted> => {
    const res = await fetch(`${stack.url}/v2/tasks`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ pool: MIXED_POOL.name, priority, prompt: `mixed [sleep:${runSeconds()}]` }),
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`submit answered ${res.status}: ${text}`);
    const data = (JSON.parse(text) as { data: Record<string, unknown> }).data;
    const [expect, error] = [data.waiting_time_expect, data.waiting_time_error];
    return {
      uuid: data.uuid as string,
      priority,
      ...(typeof expect === "number" && typeof error === "number" && { predicted: { expect, error } }),
    };
  };
  const finished = async (uuids: string[]) => {
    for (let pending = [...uuids]; pending.length > 0; await sleep(500)) {
      const tasks = await Promise.all(pending.map((uuid) => store.getTask(uuid)));
      pending = pending.filter(
        (_, i) => !["succeeded", "failed", "canceled"].includes(tasks[i]?.status ?? ""),
      );
    }
  };

  const priority = () => (random() < MIXED.highShare ? MIXED.priorities.high : MIXED.priorities.low);
  const history = await Promise.all(Array.from({ length: MIXED.historyTasks }, () => submit(priority())));
  await finished(history.map((t) => t.uuid));
  log(
    `mixed: ${history.length} tasks of history run; a backlog of ${MIXED.backlogTasks}, then arrivals for ${MIXED.arrivalSeconds} s`,
  );

  // The backlog one after another, as a client with a list submits it: each sees those before it.
  const arrivals: Promise<Submitted>[] = [];
  for (let i = 0; i < MIXED.backlogTasks; i++) arrivals.push(Promise.resolve(await submit(priority())));
  const start = Date.now();
  const judgedUntil = start + MIXED.arrivalSeconds * 1000;
  let judgedCount = 0;
  for (let next = start; next < judgedUntil + MIXED.tailSeconds * 1000; ) {
    await sleep(Math.max(0, next - Date.now()));
    if (next < judgedUntil) judgedCount = arrivals.length + 1;
    arrivals.push(submit(priority()));
    next += (-Math.log(1 - random()) / MIXED.arrivalsPerSecond) * 1000;
  }
  const all = await Promise.all(arrivals);
  await finished(all.map((t) => t.uuid));
  const submitted = all.slice(0, judgedCount);

  const judged = await Promise.all(
    submitted.flatMap((t) => {
      const predicted = t.predicted;
      if (!predicted) return [];
      return [
        (async () => {
          const [task, run] = await Promise.all([
            store.getTask(t.uuid),
            store.getRun(t.uuid, runIdFor(t.uuid, 1)),
          ]);
          const actual = (Date.parse(run?.start_time ?? "") - Date.parse(task?.create_time ?? "")) / 1000;
          return { ...t, predicted, actual, inside: Math.abs(actual - predicted.expect) <= predicted.error };
        })(),
      ];
    }),
  );
  const share = (of: typeof judged) => round(of.filter((j) => j.inside).length / Math.max(1, of.length), 3);
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  const meanWait = mean(judged.map((j) => j.actual));
  const meanAbsError = mean(judged.map((j) => Math.abs(j.actual - j.predicted.expect)));
  const queue = await fetch(`${stack.url}/v2/queues/${MIXED_POOL.name}?verbose=true`, {
    headers: { authorization: `Bearer ${options.adminKey}` },
  });
  return {
    tasks: submitted.length,
    estimated: judged.length,
    estimate_coverage: share(judged),
    estimate_mae_ratio: round(meanAbsError / meanWait, 3),
    mean_wait_s: round(meanWait, 2),
    mean_abs_error_s: round(meanAbsError, 2),
    coverage_by_priority: Object.fromEntries(
      Object.entries(MIXED.priorities).map(([name, priority]) => [
        name,
        share(judged.filter((j) => j.priority === priority)),
      ]),
    ),
    queue_calibration: ((await queue.json()) as { data: { calibration: unknown } }).data.calibration,
  };
}
