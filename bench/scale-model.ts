/**
 * The scale simulation (npm run scale): the per-task load the benchmark recorded (bench/results/profile.json:
 * each request of a task's lifecycle, the write units it put on each key, and what a heartbeat adds),
 * replayed second by second at a target rate with a traffic mix, against AWS's published limits.
 */
import { LISTING_SHARDS } from "../adapters/table/keys.ts";
import { DUE_SHARDS } from "../core/names.ts";
import { seeded } from "./stats.ts";

/** When in a task's life a request is made. */
export type Stage = "submit" | "start" | "end" | "heartbeat";

export interface ProfiledRequest {
  /** `where service operation detail`, as the benchmark tallies it. */
  request: string;
  stage: Stage;
  per_task: number;
  /** SQS and SNS messages carried (batches). */
  messages: number;
  rcu: number;
  /** Write units by landing: `table <partition key pattern>` or `index <name> <partition pattern>`. */
  write_units: Record<string, number>;
}

export interface LoadProfile {
  date: string;
  /** The benchmark pools' lease (its heartbeats came every third of it). */
  lease_seconds: number;
  requests: ProfiledRequest[];
  /** Per heartbeat. */
  heartbeat: ProfiledRequest[];
}

/** A plain task's request, by its part and tally key: in which stage of the task it is made. */
export function stageOf(where: string, key: string): Stage {
  if (where === "api") return "submit";
  const claims =
    /^SQS (ReceiveMessage|DeleteMessage)/.test(key) ||
    /^DynamoDB TransactWriteItems Put:TASK\+Put:RUN(\+Put:EVENT)?$/.test(key);
  return where === "worker" && claims ? "start" : "end";
}

/** The published limits the load is held against (us-east-1; see README "Scale"). */
export const LIMITS = {
  /** Per partition key of the table or of a GSI: a key's items never split across partitions. */
  partitionWcu: 1000,
  partitionRcu: 3000,
  /** On-demand throughput quota, per table and per each of its GSIs (adjustable). */
  tableWru: 40_000,
  /** FIFO high throughput mode, per queue and API action, without batching (us-east-1). */
  fifoQueueTps: 70_000,
  /** Lambda concurrent executions per region (adjustable). */
  lambdaConcurrency: 1000,
  /** API Gateway requests per second per account and region (adjustable). */
  apiGatewayAccountRps: 10_000,
  /** SNS Publish (and PublishBatch messages) per second, standard topics (us-east-1, adjustable). */
  snsMessagesPerSecond: 30_000,
} as const;

export interface Mix {
  tenants: number;
  /** Share of all traffic from the biggest tenant (the rest share the remainder evenly). */
  bigTenantShare: number;
  pools: number;
  bigPoolShare: number;
  /** Run times, log-uniform between these (seconds). */
  runSeconds: [number, number];
  /** The pools' lease in production: a heartbeat every third of it. */
  leaseSeconds: number;
}

export const DEFAULT_MIX: Mix = {
  tenants: 100,
  bigTenantShare: 0.5,
  pools: 10,
  bigPoolShare: 0.3,
  runSeconds: [10, 600],
  leaseSeconds: 120,
};

export interface Hot {
  key: string;
  kind: string;
  utilization: number;
}

export interface ScaleResult {
  target_tasks_per_second: number;
  simulated_seconds: number;
  mix: Mix;
  heartbeats_per_task: number;
  /** The hottest DynamoDB partition key's share of its limit (table or GSI). */
  max_partition_utilization: number;
  hottest: Hot[];
  resources: Hot[];
}

/** Where a read request's units land, from its tally detail. */
function readLanding(request: string): string {
  const detail = request.split(" ").slice(3).join(" ");
  if (detail === "index ready") return "index ready READY#<pool>";
  if (detail === "index due") return "index due DUE#<shard>";
  if (detail === "index by-tenant") return "index by-tenant T#<tenant>#TASK#<list-shard>";
  if (detail === "TASK" || detail === "RUN") return "table TASK#<task>";
  if (detail === "POOL") return "table POOL#<pool>";
  return `table ${detail}`;
}

interface Landing {
  pattern: string;
  wcu: number;
  rcu: number;
}

/** The units each stage puts on each landing, summed over its requests. */
function landingsByStage(profile: LoadProfile): Record<Stage, Landing[]> {
  const out: Record<Stage, Landing[]> = { submit: [], start: [], end: [], heartbeat: [] };
  for (const r of [...profile.requests, ...profile.heartbeat]) {
    const list = out[r.stage];
    for (const [pattern, wcu] of Object.entries(r.write_units)) list.push({ pattern, wcu, rcu: 0 });
    if (r.rcu > 0) list.push({ pattern: readLanding(r.request), wcu: 0, rcu: r.rcu });
  }
  return out;
}

/** Requests of one kind per task, by stage (heartbeat: per heartbeat). */
const requestsMatching = (profile: LoadProfile, pattern: RegExp, field: "per_task" | "messages") => ({
  task: profile.requests.filter((r) => pattern.test(r.request)).reduce((n, r) => n + r[field], 0),
  beat: profile.heartbeat.filter((r) => pattern.test(r.request)).reduce((n, r) => n + r[field], 0),
});

/**
 * Simulates `measureSeconds` of steady traffic at `rate` tasks a second, after enough simulated time that
 * the longest tasks are in flight: each task gets a tenant, a pool and a run time from the mix, and its
 * stages land their units on their keys in the second they happen. A key's utilization is its busiest
 * second against its limit.
 */
export function simulate(
  profile: LoadProfile,
  rate: number,
  options: { mix?: Mix; measureSeconds?: number; lambdaMs: number; apiThrottleRps: number; seed?: number },
): ScaleResult {
  const mix = options.mix ?? DEFAULT_MIX;
  const measure = options.measureSeconds ?? 60;
  const random = seeded(options.seed ?? 1);
  const [minRun, maxRun] = mix.runSeconds;
  const beatEvery = mix.leaseSeconds / 3;
  const stages = landingsByStage(profile);
  const warm = Math.ceil(maxRun) + 1;
  /** Per key, per measured second: units. */
  const wcu = new Map<string, Float64Array>();
  const rcu = new Map<string, Float64Array>();
  const add = (map: Map<string, Float64Array>, key: string, second: number, units: number) => {
    let row = map.get(key);
    if (!row) {
      row = new Float64Array(measure);
      map.set(key, row);
    }
    row[second] = (row[second] ?? 0) + units;
  };
  const tenantOf = () =>
    random() < mix.bigTenantShare ? "tenant-0" : `tenant-${1 + Math.floor(random() * (mix.tenants - 1))}`;
  const poolOf = () =>
    random() < mix.bigPoolShare ? "pool-0" : `pool-${1 + Math.floor(random() * (mix.pools - 1))}`;
  /** A task's own partition takes its few writes within a second or two: its busiest second. */
  let taskPartitionPeak = 0;
  let beatsTotal = 0;
  let tasks = 0;
  for (let arrival = -warm; arrival < measure; arrival++) {
    for (let i = 0; i < rate; i++) {
      const tenant = tenantOf();
      const pool = poolOf();
      const shard = Math.floor(random() * DUE_SHARDS);
      const listShard = Math.floor(random() * LISTING_SHARDS);
      const run = minRun * (maxRun / minRun) ** random();
      const beats = Math.floor(run / beatEvery);
      tasks++;
      beatsTotal += beats;
      const land = (stage: Stage, at: number) => {
        const second = Math.floor(at);
        let own = 0;
        for (const l of stages[stage]) {
          if (l.pattern.includes("<task>")) {
            own += l.wcu;
            continue;
          }
          if (second < 0 || second >= measure) continue;
          const key = l.pattern
            .replace("<tenant>", tenant)
            .replace("<pool>", pool)
            .replace("<shard>", String(shard))
            .replace("<list-shard>", String(listShard))
            .replace("<minute>", String(Math.floor(at / 60)));
          if (l.wcu) add(wcu, key, second, l.wcu);
          if (l.rcu) add(rcu, key, second, l.rcu);
        }
        taskPartitionPeak = Math.max(taskPartitionPeak, own);
      };
      const at = arrival + random();
      land("submit", at);
      land("start", at);
      for (let b = 1; b <= beats; b++) land("heartbeat", at + b * beatEvery);
      land("end", at + run);
    }
  }
  const peak = (row: Float64Array) => row.reduce((m, v) => Math.max(m, v), 0);
  const mean = (row: Float64Array) => row.reduce((n, v) => n + v, 0) / row.length;
  const kindOf = (key: string) =>
    key.startsWith("index ") ? `${key.split(" ")[1]} index partition` : "table partition";
  const partitions: Hot[] = [
    ...[...wcu].map(([key, row]) => ({
      key: `${key} (writes)`,
      kind: kindOf(key),
      utilization: peak(row) / LIMITS.partitionWcu,
    })),
    ...[...rcu].map(([key, row]) => ({
      key: `${key} (reads)`,
      kind: kindOf(key),
      utilization: peak(row) / LIMITS.partitionRcu,
    })),
    {
      key: "table TASK#<task> (one task's partition)",
      kind: "table partition",
      utilization: taskPartitionPeak / LIMITS.partitionWcu,
    },
  ];
  const beatsPerTask = beatsTotal / tasks;
  /** Mean write units a second by quota: the table's own, and each GSI's (`index <name> …`). */
  const byQuota = new Map<string, number>([
    ["table", (taskUnits(stages) + beatsPerTask * beatTaskUnits(stages)) * rate],
  ]);
  for (const [key, row] of wcu) {
    const quota = key.startsWith("index ") ? `index ${key.split(" ")[1]}` : "table";
    byQuota.set(quota, (byQuota.get(quota) ?? 0) + mean(row));
  }
  const perSecond = (p: { task: number; beat: number }) => (p.task + p.beat * beatsPerTask) * rate;
  /** The busiest pool's share of the queue requests of one action. */
  const fifoByAction = (action: string) =>
    perSecond(requestsMatching(profile, new RegExp(`^(api|worker) SQS ${action}`), "per_task")) *
    mix.bigPoolShare;
  const resources: Hot[] = [
    ...[...byQuota].map(([quota, wru]) => ({
      key: `DynamoDB ${quota} write quota (40,000 WRU/s, adjustable)`,
      kind: "throughput quota",
      utilization: wru / LIMITS.tableWru,
    })),
    ...["SendMessage", "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility"].map((action) => ({
      key: `SQS ${action} on pool-0's queue`,
      kind: "FIFO queue (high throughput)",
      utilization: fifoByAction(action) / LIMITS.fifoQueueTps,
    })),
    {
      key: "Lambda concurrency (the submits)",
      kind: "Lambda",
      utilization: (rate * options.lambdaMs) / 1000 / LIMITS.lambdaConcurrency,
    },
    {
      key: "API Gateway stage throttle (submits)",
      kind: "API Gateway",
      utilization: rate / options.apiThrottleRps,
    },
    { key: "API Gateway account rate", kind: "API Gateway", utilization: rate / LIMITS.apiGatewayAccountRps },
    {
      key: "SNS messages published",
      kind: "SNS",
      utilization:
        perSecond(requestsMatching(profile, /^events SNS Publish/, "messages")) / LIMITS.snsMessagesPerSecond,
    },
  ];
  const byUse = (a: Hot, b: Hot) => b.utilization - a.utilization;
  const rounded = (h: Hot) => ({ ...h, utilization: Math.round(h.utilization * 1000) / 1000 });
  partitions.sort(byUse);
  return {
    target_tasks_per_second: rate,
    simulated_seconds: warm + measure,
    mix,
    heartbeats_per_task: Math.round(beatsPerTask * 100) / 100,
    max_partition_utilization: rounded(partitions[0] as Hot).utilization,
    hottest: [...partitions.slice(0, 12), ...resources].sort(byUse).slice(0, 15).map(rounded),
    resources: resources.sort(byUse).map(rounded),
  };
}

/** Write units a task puts on its own partition (not simulated key by key: never hot). */
const taskUnits = (stages: Record<Stage, Landing[]>) =>
  (["submit", "start", "end"] as const).reduce(
    (n, s) => n + stages[s].filter((l) => l.pattern.includes("<task>")).reduce((m, l) => m + l.wcu, 0),
    0,
  );
const beatTaskUnits = (stages: Record<Stage, Landing[]>) =>
  stages.heartbeat.filter((l) => l.pattern.includes("<task>")).reduce((m, l) => m + l.wcu, 0);
