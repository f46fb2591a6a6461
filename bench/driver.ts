/**
 * The load the benchmark puts on a running local stack, over real HTTP, and what it measures: request
 * counts per task, submit and dispatch latency, and sustained throughput. The driver reads task state
 * straight from the table with clients of its own, so its polling is neither counted nor served by the API.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { PoolConfig } from "../core/config.ts";
import type { TaskStore } from "../core/ports.ts";
import type { Task } from "../core/records.ts";
import type { LocalStack } from "../local/stack.ts";
import {
  diffTally,
  type RecordedWrite,
  type RequestCounter,
  sumTallies,
  type Tally,
} from "./request-counter.ts";
import type { WorkerDump } from "./worker-dump.ts";

export type InProcess = "api" | "tick" | "events" | "callbacks";
const IN_PROCESS: InProcess[] = ["api", "tick", "events", "callbacks"];

export interface Driver {
  stack: Pick<LocalStack, "url" | "workerPid">;
  /** Reads the table directly (uncounted clients). */
  store: Pick<TaskStore, "getTask">;
  /** Tasks waiting in a pool (up to `limit`), as the system under load counts them. */
  backlog(pool: string, limit: number): Promise<number>;
  /** Tasks finished so far. */
  finished(): Promise<{ succeeded: number; failed: number }>;
  pools: PoolConfig[];
  tenant: { id: string; apiKey: string };
  /** The in-process parts' counters: the API, the tick, the events relay and the callback deliverer. */
  counters: Record<InProcess, RequestCounter>;
  /** Where worker processes write their counts on SIGUSR2 (bench/worker-counter.ts). */
  countsDir: string;
  clients: number;
  log(message: string): void;
}

/** The prompt of a plain task: the instant CLIs answer it at once. */
const INSTANT_PROMPT = "benchmark: answer at once";

/** Pause after a counted task ends, so that each task's requests are its own. */
const SETTLE_PAUSE_MS = 200;
/** How long the events relay (polling the stream every 200 ms) and the callback deliverer may trail. */
const TRAIL_MS = 1500;

const DONE = new Set(["succeeded", "failed", "canceled", "completed"]);

/** Submits a plain one-shot task: a pool and a prompt, nothing else. */
export async function submit(
  d: Driver,
  pool: string,
  prompt = INSTANT_PROMPT,
): Promise<{ uuid: string; ms: number; sentAt: number }> {
  const sentAt = Date.now();
  const started = performance.now();
  const res = await fetch(`${d.stack.url}/v2/tasks`, {
    method: "POST",
    headers: { authorization: `Bearer ${d.tenant.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ pool, prompt }),
  });
  const text = await res.text();
  const ms = performance.now() - started;
  if (res.status !== 201) throw new Error(`submit answered ${res.status}: ${text}`);
  return { uuid: (JSON.parse(text) as { data: { uuid: string } }).data.uuid, ms, sentAt };
}

/** Reads of task state the driver has made (its own load on the emulator). */
let polls = 0;

/** Polls the task until `until` holds, the first time after `firstMs`. */
async function waitForTask(
  d: Driver,
  uuid: string,
  until: (task: Task) => boolean,
  pollMs: number,
  firstMs = 0,
  timeoutMs = 60_000,
): Promise<Task> {
  const deadline = Date.now() + timeoutMs;
  if (firstMs > 0) await sleep(firstMs);
  for (;;) {
    polls++;
    const task = await d.store.getTask(uuid);
    if (task && until(task)) return task;
    if (Date.now() > deadline) throw new Error(`task ${uuid} is still ${task?.status} after ${timeoutMs} ms`);
    await sleep(pollMs);
  }
}

/** Every worker process's counts so far, and its writes since the last call: each writes them on SIGUSR2. */
export async function workerDumps(d: Driver): Promise<WorkerDump[]> {
  return Promise.all(
    d.pools.map(async ({ name }) => {
      const file = join(d.countsDir, `${name}.json`);
      rmSync(file, { force: true });
      const pid = d.stack.workerPid(name);
      if (pid === undefined) throw new Error(`no worker for pool ${name}`);
      process.kill(pid, "SIGUSR2");
      const deadline = Date.now() + 10_000;
      while (!existsSync(file)) {
        if (Date.now() > deadline) throw new Error(`worker ${name} wrote no counts`);
        await sleep(10);
      }
      return JSON.parse(readFileSync(file, "utf8")) as WorkerDump;
    }),
  );
}

/** The counts so far by part, and the DynamoDB writes made since the last snapshot, tagged with their part. */
async function snapshot(d: Driver) {
  const dumps = await workerDumps(d);
  const tagged = (where: string, writes: RecordedWrite[]) => writes.map((w) => ({ ...w, where }));
  const taken = IN_PROCESS.map((part) => ({ part, ...d.counters[part].takeWrites() }));
  const tallies: Record<string, Tally> = Object.fromEntries(
    IN_PROCESS.map((part) => [part, d.counters[part].snapshot()]),
  );
  tallies.worker = sumTallies(dumps.map((dump) => dump.tally));
  return {
    tallies,
    writes: [
      ...taken.flatMap((t) => tagged(t.part, t.writes)),
      ...dumps.flatMap((dump) => tagged("worker", dump.writes)),
    ],
    droppedWrites: [...taken, ...dumps].reduce((n, t) => n + t.dropped, 0),
    at: performance.now(),
  };
}

/** Submits `count` tasks from the driver's clients and waits until all have ended. */
export async function warmUp(d: Driver, count: number): Promise<void> {
  const uuids: string[] = [];
  await Promise.all(
    Array.from({ length: d.clients }, async (_, c) => {
      for (let i = c; i < count; i += d.clients) {
        uuids.push((await submit(d, (d.pools[i % d.pools.length] as PoolConfig).name)).uuid);
      }
    }),
  );
  for (const uuid of uuids) await waitForTask(d, uuid, (t) => DONE.has(t.status), 20);
}

/**
 * Requests that belong to a part's time rather than to any task: empty long polls, a worker's
 * registration, the relay's look at the table (reading the stream itself is the stream client's, not
 * counted, and free for Lambda triggers on AWS).
 */
export const isBackground = (key: string) =>
  key === "SQS ReceiveMessage empty" || key.endsWith(" WORKER") || key === "DynamoDB DescribeTable";

/** The parts whose requests make up a task's lifecycle (the tick's are left out). */
export const LIFECYCLE = ["api", "worker", "events", "callbacks"] as const;
export type LifecyclePart = (typeof LIFECYCLE)[number];

export interface CountResult {
  tasks: number;
  /** Per task, background excluded, by part. */
  perTask: Record<LifecyclePart, Tally>;
  /** Background requests over the phase, by `part key`. */
  background: Tally;
  tick: Tally;
  /** The DynamoDB writes of the phase (API, workers and tick), for bench/capacity.ts. */
  writes: (RecordedWrite & { where: string })[];
  droppedWrites: number;
  /** Submit round trips, one at a time: what one Lambda invocation would take (no other request in its process). */
  submitMs: number[];
  seconds: number;
  workers: number;
}

/**
 * One plain one-shot task at a time in `pool` (default the driver's first), from submit until it has
 * ended and its pool has looked for the next task: every request the API and the workers make
 * meanwhile, divided by the number of tasks.
 */
export async function countRequests(
  d: Driver,
  tasks: number,
  prompt = INSTANT_PROMPT,
  pool = d.pools[0] as PoolConfig,
): Promise<CountResult> {
  // The events relay and the callback deliverer trail the tasks: let them catch up on earlier work.
  await sleep(TRAIL_MS);
  const before = await snapshot(d);
  const submitMs: number[] = [];
  for (let i = 0; i < tasks; i++) {
    const { uuid, ms } = await submit(d, pool.name, prompt);
    submitMs.push(ms);
    await waitForTask(d, uuid, (t) => DONE.has(t.status), 10, 0, 120_000);
    // The worker looks for a next task just after the task ends: let it finish before the next submit.
    await sleep(SETTLE_PAUSE_MS);
  }
  await sleep(TRAIL_MS);
  const after = await snapshot(d);
  const background: Tally = {};
  const perTask = (part: string): Tally => {
    const all = diffTally(after.tallies[part] ?? {}, before.tallies[part] ?? {});
    const out: Tally = {};
    for (const [key, count] of Object.entries(all)) {
      if (isBackground(key)) background[`${part} ${key}`] = count;
      else
        out[key] = {
          ...count,
          requests: count.requests / tasks,
          errors: count.errors / tasks,
          rcu: count.rcu / tasks,
          wcu: count.wcu / tasks,
          messages: count.messages / tasks,
        };
    }
    return out;
  };
  return {
    tasks,
    perTask: Object.fromEntries(LIFECYCLE.map((part) => [part, perTask(part)])) as Record<
      LifecyclePart,
      Tally
    >,
    background,
    tick: diffTally(after.tallies.tick ?? {}, before.tallies.tick ?? {}),
    writes: after.writes,
    droppedWrites: after.droppedWrites,
    submitMs,
    seconds: (after.at - before.at) / 1000,
    workers: d.pools.length,
  };
}

export interface LatencyResult {
  tasks: number;
  /** The API's requests over the phase (to see where a submit's time goes). */
  api: Tally;
  /** The driver's own reads of task state, per task. */
  pollsPerTask: number;
  submitMs: number[];
  dispatchMs: number[];
  seconds: number;
}

/**
 * `clients` concurrent clients, each submitting a task and waiting until it is running before the next:
 * submit round trip, and the time from sending the submit until the worker marked the run running
 * (the task's start_time, written by the worker on this same machine's clock).
 */
export async function measureLatency(d: Driver, tasks: number, pollMs: number): Promise<LatencyResult> {
  const submitMs: number[] = [];
  const dispatchMs: number[] = [];
  const started = performance.now();
  const before = d.counters.api.snapshot();
  const pollsBefore = polls;
  await Promise.all(
    Array.from({ length: d.clients }, async (_, c) => {
      /** Recent gaps between a submit's answer and its run starting. */
      const gaps: number[] = [];
      for (let i = c; i < tasks; i += d.clients) {
        const { uuid, ms, sentAt } = await submit(d, (d.pools[i % d.pools.length] as PoolConfig).name);
        submitMs.push(ms);
        // Polls cost the emulator's CPU: the first one comes when this client's runs usually start.
        const first = gaps.length ? 0.8 * Math.min(...gaps) : 0;
        const task = await waitForTask(d, uuid, (t) => t.start_time !== undefined, pollMs, first);
        const dispatch = Date.parse(task.start_time as string) - sentAt;
        dispatchMs.push(dispatch);
        gaps.push(Math.max(0, dispatch - ms));
        if (gaps.length > 10) gaps.shift();
      }
    }),
  );
  const api = diffTally(d.counters.api.snapshot(), before);
  const pollsPerTask = (polls - pollsBefore) / tasks;
  return { tasks, api, pollsPerTask, submitMs, dispatchMs, seconds: (performance.now() - started) / 1000 };
}

export interface ThroughputResult {
  seconds: number;
  finished: number;
  failed: number;
  tasksPerSecond: number;
  /** Share of 250 ms samples in the window at which every pool had queued work waiting. */
  saturatedShare: number;
  /** Lowest number of queued tasks seen in any pool during the window. */
  minBacklog: number;
  submitted: number;
  /** The API's requests over the window, with a backlog queued (what a submit costs then). */
  api: Tally;
}

/**
 * Keeps a backlog of queued tasks in every pool (the clients top it up), so that the pools stay
 * saturated, and counts the tasks that finish over `seconds`.
 */
/**
 * The backlog kept per pool, in slots: deep enough that the pools stay saturated for the whole window
 * even when they finish work faster than the clients can submit it (the pools then eat into it).
 */
const BACKLOG_SLOTS = 8;

export async function measureThroughput(d: Driver, seconds: number): Promise<ThroughputResult> {
  const target = Object.fromEntries(d.pools.map((p) => [p.name, BACKLOG_SLOTS * p.max_concurrency]));
  const depth: Record<string, number> = Object.fromEntries(d.pools.map((p) => [p.name, 0]));
  const inFlight: Record<string, number> = Object.fromEntries(d.pools.map((p) => [p.name, 0]));
  let stopping = false;
  let submitted = 0;
  /** The pool furthest below its target backlog, if any is below it. */
  const needy = () => {
    const fill = (p: PoolConfig) => ((depth[p.name] ?? 0) + (inFlight[p.name] ?? 0)) / (target[p.name] ?? 1);
    const [lowest] = [...d.pools].sort((a, b) => fill(a) - fill(b));
    return lowest && fill(lowest) < 1 ? lowest : undefined;
  };
  const clients = Array.from({ length: d.clients }, async () => {
    while (!stopping) {
      const pool = needy();
      if (!pool) {
        await sleep(20);
        continue;
      }
      inFlight[pool.name] = (inFlight[pool.name] ?? 0) + 1;
      try {
        await submit(d, pool.name);
        submitted++;
        depth[pool.name] = (depth[pool.name] ?? 0) + 1;
      } finally {
        inFlight[pool.name] = (inFlight[pool.name] ?? 0) - 1;
      }
    }
  });
  const samples: number[] = [];
  let sampling = false;
  const sampler = (async () => {
    while (!stopping) {
      const depths = await Promise.all(
        d.pools.map(async (p) => {
          const n = await d.backlog(p.name, target[p.name] ?? 1);
          depth[p.name] = n;
          return n;
        }),
      );
      if (sampling) samples.push(Math.min(...depths));
      await sleep(250);
    }
  })();

  // Build the backlog first, with the workers paused (SIGSTOP): on a small machine the clients submit
  // no faster than the pools finish, so without it the pools would never be saturated.
  const workers = d.pools.map((p) => d.stack.workerPid(p.name)).filter((pid) => pid !== undefined);
  for (const pid of workers) process.kill(pid, "SIGSTOP");
  try {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && d.pools.some((p) => (depth[p.name] ?? 0) < (target[p.name] ?? 0))) {
      await sleep(100);
    }
  } finally {
    for (const pid of workers) process.kill(pid, "SIGCONT");
  }
  const start = await d.finished();
  const apiBefore = d.counters.api.snapshot();
  const submittedBefore = submitted;
  const t0 = performance.now();
  sampling = true;
  await sleep(seconds * 1000);
  const end = await d.finished();
  const elapsed = (performance.now() - t0) / 1000;
  const api = diffTally(d.counters.api.snapshot(), apiBefore);
  const submittedInWindow = submitted - submittedBefore;
  sampling = false;
  stopping = true;
  await Promise.all([...clients, sampler]);
  const finished = end.succeeded + end.failed - start.succeeded - start.failed;
  return {
    seconds: elapsed,
    finished,
    failed: end.failed - start.failed,
    tasksPerSecond: finished / elapsed,
    saturatedShare: samples.filter((n) => n > 0).length / Math.max(1, samples.length),
    minBacklog: Math.min(...samples),
    submitted: submittedInWindow,
    api,
  };
}
