/**
 * `npm run bench`: starts the local stack with fake CLIs that answer at once, drives it over HTTP, prints a
 * summary and writes bench/results/latest.json. See README, "Benchmark".
 *
 * Knobs (environment): BENCH_LATENCY_TASKS (default 1000), BENCH_CLIENTS (8), BENCH_COUNT_TASKS (12),
 * BENCH_THROUGHPUT_SECONDS (30), BENCH_SLOTS (worker slots = max_concurrency per pool, 16), BENCH_FAN_LEAVES
 * (the wide workflow's leaves, 1000).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { performance as nodePerformance } from "node:perf_hooks";
import { DynamoStore } from "../adapters/aws/dynamo-store.ts";
import { isCliPool, type PoolConfig } from "../core/config.ts";
import { DUE_SHARDS, ENV } from "../core/names.ts";
import { localClients } from "../local/aws-clients.ts";
import { startDynamoDbLocal } from "../local/dynamodb-local.ts";
import { startFauxqsServer } from "../local/fauxqs.ts";
import { startLocalStack } from "../local/stack.ts";
import { parseSchedulerConfig } from "../runtime/scheduler-config.ts";
import { type BundleFigures, measureBundles } from "./bundles.ts";
import { type ReplayedUnits, replayWriteUnits } from "./capacity.ts";
import { FLOOR, priceFloor, priceTask } from "./cost.ts";
import {
  type CountResult,
  countRequests,
  type Driver,
  type InProcess,
  type LatencyResult,
  LIFECYCLE,
  measureLatency,
  measureThroughput,
  submit,
  type ThroughputResult,
  warmUp,
} from "./driver.ts";
import { FAIR_POOL, measureFairShare } from "./fair-share.ts";
import { measureFanWorkflow } from "./fan-workflow.ts";
import { startFloor } from "./floor.ts";
import { SLOW_MARKER, SLOW_SECONDS, writeInstantClis } from "./instant-clis.ts";
import { MIXED, MIXED_POOL, type MixedResult, measureMixed } from "./mixed.ts";
import { PRICES } from "./prices.ts";
import { isFloor, reasonFor } from "./reasons.ts";
import { RequestCounter } from "./request-counter.ts";
import { measureResume, RESUME } from "./resume.ts";
import { type LoadProfile, stageOf } from "./scale-model.ts";
import { measureSelfHosted, type SelfHostedResult } from "./self-hosted.ts";
import { percentile, round } from "./stats.ts";
import { COUNTS_DIR_ENV } from "./worker-dump.ts";

const ROOT = resolve(import.meta.dirname, "..");
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const SETTINGS = {
  clients: num("BENCH_CLIENTS", 8),
  latencyTasks: num("BENCH_LATENCY_TASKS", 1000),
  countTasks: num("BENCH_COUNT_TASKS", 12),
  throughputSeconds: num("BENCH_THROUGHPUT_SECONDS", 30),
  slots: num("BENCH_SLOTS", 16),
  fanLeaves: num("BENCH_FAN_LEAVES", 1000),
  pollMs: 25,
  warmUpTasks: 8,
};

const began = performance.now();
/** Other work on the machine skews every timing: recorded with the results. */
const loadAtStart = round(loadavg()[0] ?? 0, 2);
const phases: Record<string, number> = {};
/** How busy this process's event loop (the API, fauxqs, the tick and the driver) was in each phase. */
const eventLoopBusy: Record<string, number> = {};
const log = (message: string) =>
  process.stderr.write(
    `[bench ${((performance.now() - began) / 1000).toFixed(1).padStart(5)} s] ${message}\n`,
  );
async function phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
  log(`${name}…`);
  const t = performance.now();
  const elu = nodePerformance.eventLoopUtilization();
  const out = await fn();
  phases[name] = round((performance.now() - t) / 1000);
  eventLoopBusy[name] = round(nodePerformance.eventLoopUtilization(elu).utilization, 2);
  return out;
}

/** The pool of the self-hosted phase (bench/self-hosted.ts). */
const SELF_HOSTED_POOL = "bench-self";

/** A lease short enough that a task of SLOW_SECONDS heartbeats a few times (every third of it). */
const LEASE_SECONDS = 30;

/**
 * Three pools, one per tool, each with `slots` worker slots and as much pool capacity; and the mixed
 * workload's small pool (bench/mixed.ts).
 */
const configText = (slots: number) => {
  const pool = (name: string, tool: string, slots: number) =>
    `  - { name: ${name}, tool: ${tool}, account: bench, max_concurrency: ${slots}, lease_seconds: ${LEASE_SECONDS}, ` +
    `worker: { cpu: 1024, memory: 2048, min: 1, max: 1, slots: ${slots} } }`;
  const pools = ["claude", "codex", "gemini"].map((tool) => pool(`bench-${tool}`, tool, slots));
  // Served only by the self-hosted worker of the last phase (worker.max 0: no worker of its own).
  const selfHosted = `  - { name: ${SELF_HOSTED_POOL}, tool: claude, account: bench, max_concurrency: 1, lease_seconds: ${LEASE_SECONDS}, worker: { max: 0 } }`;
  const own = [
    pool(MIXED_POOL.name, "claude", MIXED_POOL.slots),
    pool(FAIR_POOL.name, "codex", FAIR_POOL.slots),
  ];
  return `pools:\n${[...pools, ...own, selfHosted].join("\n")}\n`;
};

// 1. Bundles first, while the machine is quiet.
const bundles: BundleFigures = await phase("bundles and cold init", () => measureBundles(7));

// 2. The stack: emulators, a fresh table and queues, the API, one worker process per pool.
const work = mkdtempSync(join(tmpdir(), "switchyard-bench-"));
const configPath = join(work, "scheduler.config.yaml");
writeFileSync(configPath, configText(SETTINGS.slots));
/** The pools every phase but the mixed and self-hosted ones loads. */
const allPools = parseSchedulerConfig(configText(SETTINGS.slots)).pools;
const pools = allPools.filter((p) => ![MIXED_POOL.name, FAIR_POOL.name, SELF_HOSTED_POOL].includes(p.name));
const countsDir = join(work, "counts");
mkdirSync(countsDir);
const instantClis = join(work, "clis");
mkdirSync(instantClis);
writeInstantClis(instantClis);
const newCounters = (): Record<InProcess, RequestCounter> => ({
  api: new RequestCounter(),
  tick: new RequestCounter(),
  events: new RequestCounter(),
  callbacks: new RequestCounter(),
});
const counters = newCounters();
const { stack, emulators, endpoints } = await phase("start the local stack", async () => {
  const dataDir = resolve(ROOT, process.env[ENV.dataDir] ?? ".data");
  const [dynamodb, fauxqs] = await Promise.all([startDynamoDbLocal({ dataDir }), startFauxqsServer()]);
  const endpoints = {
    dynamodbEndpoint: dynamodb.endpoint,
    awsEndpoint: fauxqs.endpoint,
    region: "us-east-1",
  };
  const id = randomBytes(4).toString("hex");
  const quiet = { info: () => undefined, warn: () => undefined, error: console.error };
  const stack = await startLocalStack({
    port: 0,
    endpoints,
    names: {
      table: `bench-${id}`,
      bucket: `bench-${id}`,
      topic: `bench-${id}`,
      queue: (pool) => `bench-${id}-${pool}.fifo`,
    },
    configPath,
    adminKey: `bench-admin-${id}`,
    workerEnv: {
      PATH: `${instantClis}:${process.env.PATH}`,
      [COUNTS_DIR_ENV]: countsDir,
      POWERTOOLS_LOG_LEVEL: "ERROR",
    },
    workerProgram: resolve(ROOT, "bench/worker-counter.ts"),
    observeClients: (clients, role) => counters[role].attach(Object.values(clients)),
    log: quiet,
  });
  return { stack, emulators: [fauxqs, dynamodb], endpoints };
});

let results: Record<string, unknown> | undefined;
try {
  const tenant = await (async () => {
    const res = await fetch(`${stack.url}/v2/tenants`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.adminKey}`, "content-type": "application/json" },
      // Limits high enough never to refuse the benchmark: it measures the limits' requests, not their refusals.
      body: JSON.stringify({
        name: "bench",
        rate_limit_per_minute: 1_000_000,
        max_queued_tasks: 1_000_000,
        max_submissions_per_minute: 1_000_000,
      }),
    });
    if (res.status !== 201)
      throw new Error(`creating the tenant answered ${res.status}: ${await res.text()}`);
    const body = (await res.json()) as { data: { tenant: { id: string }; api_key: string } };
    return { id: body.data.tenant.id, apiKey: body.data.api_key };
  })();
  const store = new DynamoStore(localClients(endpoints).doc, stack.resources.tableName);
  const driver: Driver = {
    stack,
    store,
    backlog: async (pool, limit) => (await store.readyTasks(pool, limit)).length,
    finished: async () => {
      const count = async (status: "succeeded" | "failed") =>
        (await store.listTasks({ tenant: tenant.id, status, size: 1 })).total;
      const [succeeded, failed] = await Promise.all([count("succeeded"), count("failed")]);
      return { succeeded, failed };
    },
    pools,
    tenant,
    counters,
    countsDir,
    clients: SETTINGS.clients,
    log,
  };
  // The first request of a worker's fresh process is slow; so is the API's first handler call.
  await submit(driver, "bench-claude");
  await phase("warm up", () => warmUp(driver, SETTINGS.warmUpTasks));
  const count = await phase("count requests per task", () => countRequests(driver, SETTINGS.countTasks));
  const keyPattern = (pk: string) =>
    pk
      .replaceAll(tenant.id, "<tenant>")
      .replace(/bench-(claude|codex|gemini)/, "<pool>")
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<task>")
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z/, "<minute>");
  const replay = (writes: typeof count.writes) =>
    replayWriteUnits(localClients(endpoints).dynamodb, stack.resources.tableName, writes, keyPattern);
  const writeUnits = await phase("replay writes for capacity", () => replay(count.writes));
  // One task that runs SLOW_SECONDS: its requests beyond a plain task's are its heartbeats.
  const slow = await phase("count heartbeats", () => countRequests(driver, 1, `${SLOW_MARKER}: run a while`));
  const slowUnits = await replay(slow.writes);
  const heartbeats = Math.floor(SLOW_SECONDS / (LEASE_SECONDS / 3));
  // The floor on the same emulators, with the same clients and slots, while the stack idles (its
  // workers long-poll, its tick and relay run): the same background as the stack's own phases.
  const floor = await phase("floor: start", () =>
    startFloor({ endpoints, pools: pools.filter(isCliPool), path: instantClis, waitSeconds: 1 }),
  );
  let floorLatency: LatencyResult;
  let floorThroughput: ThroughputResult;
  try {
    const floorDriver: Driver = { ...driver, ...floor.driver, counters: newCounters() };
    await warmUp(floorDriver, SETTINGS.warmUpTasks);
    floorLatency = await phase("floor: latency", () =>
      measureLatency(floorDriver, SETTINGS.latencyTasks, SETTINGS.pollMs),
    );
    floorThroughput = await phase("floor: throughput", () =>
      measureThroughput(floorDriver, SETTINGS.throughputSeconds),
    );
  } finally {
    await floor.stop();
  }
  const latency = await phase("latency", () =>
    measureLatency(driver, SETTINGS.latencyTasks, SETTINGS.pollMs),
  );
  const throughput = await phase("throughput", () => measureThroughput(driver, SETTINGS.throughputSeconds));
  const mixed = await phase("mixed workload", () =>
    measureMixed({ stack, apiKey: tenant.apiKey, adminKey: stack.adminKey, store, log }),
  );
  const fairShare = await phase("fair share", () =>
    measureFairShare({ stack, adminKey: stack.adminKey, store, log }),
  );
  console.log(
    `  fair share: the trickle's p95 wait ${fairShare.trickle_wait_p95_s} s against its fair share ` +
      `${fairShare.fair_share_wait_p95_s} s (×${fairShare.trickle_p95_over_fair_share}); behind the flood it would wait ` +
      `${fairShare.fifo_wait_s} s\n`,
  );
  const resume = await phase("resumed sessions", measureResume);
  for (const [tool, r] of Object.entries(resume)) {
    console.log(
      `  resumed ${tool} retry: ${r.resumed_retry_tokens} tokens against ${r.fresh_retry_tokens} starting over ` +
        `(${Math.round(r.tokens_saved * 100)} % saved, ${r.turns_done_before} of ${RESUME.turns} turns done before); ` +
        `its session ${r.session_bytes} B in S3`,
    );
  }
  // The self-hosted worker runs the instant CLIs in this process.
  process.env.PATH = `${instantClis}:${process.env.PATH}`;
  const selfPool = allPools.find((p) => p.name === SELF_HOSTED_POOL) as PoolConfig;
  const selfHosted = await phase("self-hosted worker", () =>
    measureSelfHosted(driver, selfPool, stack.adminKey, SETTINGS.countTasks),
  );
  const fanWorkflow = await phase("wide workflow", () =>
    measureFanWorkflow({
      url: stack.url,
      apiKey: tenant.apiKey,
      pool: "bench-claude",
      leaves: SETTINGS.fanLeaves,
      store,
    }),
  );
  results = {
    ...report({ bundles, count, writeUnits, latency, throughput, floorLatency, floorThroughput }),
    ...mixedFigures(mixed),
    self_hosted: selfHostedFigures(selfHosted, count),
    fan_workflow: fanWorkflow,
    fair_share: fairShare,
    resumed_sessions: resume,
  };
  console.log(
    `  wide workflow: ${fanWorkflow.nodes} nodes ${fanWorkflow.status} in ${fanWorkflow.seconds} s ` +
      `(${fanWorkflow.nodes_per_second} nodes/s), each task once: ${fanWorkflow.exactly_once}\n`,
  );
  const {
    http_requests_per_task: http,
    aws_requests_per_task: aws,
    aws_requests_per_task_managed_worker: managed,
  } = results.self_hosted as ReturnType<typeof selfHostedFigures>;
  console.log(
    `  self-hosted worker: ${http} HTTP and ${aws} AWS requests per task (a managed worker's: ${managed})\n`,
  );
  writeProfile({ count, writeUnits, slow, slowUnits, heartbeats });
} finally {
  await phase("stop", async () => {
    await stack.stop();
    for (const emulator of emulators) await emulator.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });
}

const totalSeconds = round((performance.now() - began) / 1000);
const out = { ...results, timings_s: { ...phases, total: totalSeconds }, event_loop_busy: eventLoopBusy };
mkdirSync(resolve(ROOT, "bench/results"), { recursive: true });
writeFileSync(resolve(ROOT, "bench/results/latest.json"), `${JSON.stringify(out, null, 2)}\n`);
log(`done in ${totalSeconds} s; wrote bench/results/latest.json`);

/**
 * A self-hosted worker's task against a managed worker's: its HTTP requests to the API (API Gateway
 * requests and Lambda invocations on AWS), and the AWS requests of both ways. The claim's read of the
 * worker's record is per claim, though a worker record's requests are background elsewhere.
 */
function selfHostedFigures(s: SelfHostedResult, managed: CountResult) {
  const awsPerTask = (c: CountResult) =>
    LIFECYCLE.reduce((n, part) => n + Object.values(c.perTask[part]).reduce((m, t) => m + t.requests, 0), 0);
  const workerReads = (s.count.background["api DynamoDB GetItem WORKER"]?.requests ?? 0) / s.count.tasks;
  const http = Object.values(s.httpPerTask).reduce((n, v) => n + v, 0);
  return {
    tasks: s.count.tasks,
    http_requests_per_task: round(http, 2),
    http_by_route: Object.fromEntries(
      Object.entries(s.httpPerTask).map(([route, n]) => [route, round(n, 2)]),
    ),
    aws_requests_per_task: round(awsPerTask(s.count) + workerReads, 2),
    aws_requests_per_task_managed_worker: round(awsPerTask(managed), 2),
    usd_per_million_tasks_http: round(
      http * (PRICES.apiGatewayRest.usd_per_million_requests + PRICES.lambda.usd_per_million_requests),
      2,
    ),
  };
}

/** The mixed workload's figures: the estimates' coverage and error up front, the rest beside them. */
function mixedFigures(m: MixedResult) {
  const { estimate_coverage, estimate_mae_ratio, ...rest } = m;
  return { estimate_coverage, estimate_mae_ratio, mixed: { settings: MIXED, ...rest } };
}

function report(r: {
  bundles: BundleFigures;
  count: Awaited<ReturnType<typeof countRequests>>;
  writeUnits: ReplayedUnits;
  latency: LatencyResult;
  throughput: ThroughputResult;
  floorLatency: LatencyResult;
  floorThroughput: ThroughputResult;
}) {
  const rows = LIFECYCLE.flatMap((where) =>
    Object.values(r.count.perTask[where]).map((c) => ({ where: where as string, ...c })),
  ).map((c) => {
    const key = [c.service, c.operation, c.detail].filter(Boolean).join(" ");
    const units = r.writeUnits.byRequest[`${c.where} ${key}`] ?? { table: 0, index: 0 };
    return {
      where: c.where,
      service: c.service,
      operation: c.operation,
      detail: c.detail,
      requests: round(c.requests, 2),
      messages: round(c.messages, 2),
      failed: round(c.errors, 2),
      rcu: round(c.rcu, 2),
      wcu: round((units.table + units.index) / r.count.tasks, 2),
      wcu_table: round(units.table / r.count.tasks, 2),
      wcu_index: round(units.index / r.count.tasks, 2),
      ms_each: round(c.ms / c.requests, 1),
      floor: isFloor(c.where, key),
      reason: reasonFor(c.where, key),
    };
  });
  // Priced per row: DynamoDB with the replayed write units.
  const allPerTask = rows.map((row) => ({ ...row, errors: row.failed, ms: 0 }));
  const requestsPerTask = rows.reduce((n, c) => n + c.requests, 0);
  const rcu = rows.reduce((n, c) => n + c.rcu, 0);
  const wcu = rows.reduce((n, c) => n + c.wcu, 0);
  const submitP50 = percentile(r.latency.submitMs, 50);
  const dispatchP50 = percentile(r.latency.dispatchMs, 50);
  const floorDispatchP50 = percentile(r.floorLatency.dispatchMs, 50);
  // A Lambda invocation serves one request at a time: bill the submit measured alone, not under 8 clients.
  const lambdaMs = percentile(r.count.submitMs, 50);
  const count = (where: string, key: string, field: "requests" | "messages") =>
    rows
      .filter((c) => c.where === where && `${c.service} ${c.operation} ${c.detail}`.trim() === key)
      .reduce((n, c) => n + c[field], 0);
  const published =
    count("events", "SNS PublishBatch", "messages") + count("events", "SNS Publish", "requests");
  // The relay's and the callback function's invocations: one per batch they handle.
  const batchInvocations =
    count("events", "SNS PublishBatch", "requests") +
    count("callbacks", "SQS ReceiveMessage hit", "requests");
  const cost = priceTask(allPerTask, { apiCalls: 1, lambdaMs, batchInvocations, snsMessages: published });
  const floor = priceFloor(lambdaMs);
  const byService: Record<string, number> = {};
  for (const row of rows) byService[row.service] = round((byService[row.service] ?? 0) + row.requests, 2);
  const ticks = Object.values(r.count.tick)
    .filter((c) => c.operation === "Query" && c.detail === "index due")
    .reduce((n, c) => n + c.requests / DUE_SHARDS, 0);
  const tickRequests = Object.values(r.count.tick).reduce((n, c) => n + c.requests, 0);
  const minutes = r.count.seconds / 60;
  const perMinute = (key: string, c: { requests: number }) =>
    round(c.requests / (key.startsWith("worker ") ? r.count.workers * minutes : minutes), 1);

  const results = {
    date: new Date().toISOString(),
    machine: {
      cpus: availableParallelism(),
      cpu_model: cpus()[0]?.model ?? "unknown",
      memory_gb: round(totalmem() / 2 ** 30, 0),
      node: process.version,
      os: `${process.platform} ${release()}`,
      load_average_1m: { at_start: loadAtStart, at_end: round(loadavg()[0] ?? 0, 2) },
    },
    settings: SETTINGS,
    submit_ms_p50: round(submitP50),
    submit_ms_p99: round(percentile(r.latency.submitMs, 99)),
    dispatch_ms_p50: round(dispatchP50),
    dispatch_ms_p99: round(percentile(r.latency.dispatchMs, 99)),
    latency_tasks: r.latency.tasks,
    latency_driver_polls_per_task: round(r.latency.pollsPerTask, 1),
    submit_requests_under_load: Object.fromEntries(
      Object.entries(r.latency.api).map(([key, c]) => [
        key,
        {
          per_submit: round(c.requests / r.latency.tasks, 2),
          failed_per_submit: round(c.errors / r.latency.tasks, 2),
          ms_each: round(c.ms / c.requests, 1),
        },
      ]),
    ),
    tasks_per_second: round(r.throughput.tasksPerSecond),
    floor_dispatch_ms_p50: round(floorDispatchP50),
    floor_dispatch_ms_p99: round(percentile(r.floorLatency.dispatchMs, 99)),
    floor_tasks_per_second: round(r.floorThroughput.tasksPerSecond),
    dispatch_vs_floor_p50: round(dispatchP50 / floorDispatchP50, 2),
    throughput_vs_floor: round(r.throughput.tasksPerSecond / r.floorThroughput.tasksPerSecond, 2),
    floor_throughput: {
      finished: r.floorThroughput.finished,
      saturated_share: round(r.floorThroughput.saturatedShare, 2),
      min_backlog: r.floorThroughput.minBacklog,
    },
    throughput: {
      window_s: round(r.throughput.seconds),
      finished: r.throughput.finished,
      failed: r.throughput.failed,
      saturated_share: round(r.throughput.saturatedShare, 2),
      min_backlog: r.throughput.minBacklog,
      capacity: pools.reduce((n, p) => n + p.max_concurrency, 0),
      submitted: r.throughput.submitted,
      api_requests_per_submit: Object.fromEntries(
        Object.entries(r.throughput.api).map(([key, c]) => [
          key,
          {
            per_submit: round(c.requests / Math.max(1, r.throughput.submitted), 2),
            failed_per_submit: round(c.errors / Math.max(1, r.throughput.submitted), 2),
            rcu_per_submit: round(c.rcu / Math.max(1, r.throughput.submitted), 2),
          },
        ]),
      ),
    },
    requests_per_task: round(requestsPerTask, 2),
    requests_per_task_by_service: byService,
    floor_requests_per_task: FLOOR.requests,
    floor: FLOOR.description,
    dynamodb_rcu_per_task: round(rcu, 2),
    dynamodb_wcu_per_task: round(wcu, 2),
    dynamodb_capacity_note:
      "RCU as DynamoDB Local reports them (ReturnConsumedCapacity); WCU from replaying each recorded write " +
      "item by item (bench/capacity.ts): table writes inside transactions ×2, index updates ×1 (assumed)",
    dynamodb_wcu_per_task_table: round(
      rows.reduce((n, c) => n + c.wcu_table, 0),
      2,
    ),
    dynamodb_wcu_per_task_index: round(
      rows.reduce((n, c) => n + c.wcu_index, 0),
      2,
    ),
    dropped_writes: r.count.droppedWrites,
    write_units_per_task_by_item_kind: perTaskOf(r.writeUnits.byItemKind, r.count.tasks),
    write_units_per_task_by_index_partition: perTaskOf(r.writeUnits.byIndexPartition, r.count.tasks),
    requests: rows,
    usd_per_million_tasks: round(cost.total, 2),
    usd_per_million_tasks_by_line: Object.fromEntries(
      Object.entries(cost.lines).map(([k, v]) => [k, round(v, 3)]),
    ),
    floor_usd_per_million_tasks: round(floor.total, 2),
    pricing: {
      as_of: PRICES.as_of,
      region: PRICES.region,
      lambda_billed_ms: Math.ceil(lambdaMs),
      note:
        "Lambda: one invocation per task (the submit), billed for the median submit round trip measured one at " +
        "a time against the local emulators; Fargate worker time, CloudWatch and data transfer not included",
    },
    background: {
      note:
        "Not per task: idle long polls (per worker, or per part), a worker's 30 s registration, the relay's " +
        "table lookups, and the tick. The relay's stream reads are not counted (free for Lambda triggers on AWS).",
      requests_per_minute: Object.fromEntries(
        Object.entries(r.count.background).map(([k, c]) => [k, perMinute(k, c)]),
      ),
      tick_requests_per_tick: ticks > 0 ? round(tickRequests / ticks, 1) : null,
    },
    sns_messages_per_task: round(published, 2),
    callback_path:
      "Counted to the callback event: the outbox events (inside the transactions), the relay's SNS " +
      "publishes (SNS bills each message of a batch), and the callback function's queue, which gets every " +
      "run-end event (a plain task has no callback URL, so nothing is delivered). The relay's and callback " +
      "function's Lambda invocations are priced per batch, without duration.",
    bundle_kb: r.bundles.bundle_kb,
    cold_init_ms: r.bundles.cold_init_ms,
    bundle_largest_parts_kb: r.bundles.bundle_largest_parts_kb,
  };
  printSummary(results, rows);
  return results;
}

/**
 * The load one task puts on each key and resource, for bench/scale.ts: every request of a plain task's
 * lifecycle with the units it wrote where (and when in the lifecycle), and what one heartbeat adds.
 */
function writeProfile(r: {
  count: CountResult;
  writeUnits: ReplayedUnits;
  slow: CountResult;
  slowUnits: ReplayedUnits;
  heartbeats: number;
}) {
  const requestsOf = (c: CountResult) =>
    LIFECYCLE.flatMap((where) =>
      Object.entries(c.perTask[where]).map(([key, tally]) => ({ where: where as string, key, tally })),
    );
  const plain = requestsOf(r.count);
  const plainKeys = new Set(plain.map((p) => `${p.where} ${p.key}`));
  const landing = (units: ReplayedUnits, request: string, per: number) =>
    Object.fromEntries(
      Object.entries(units.byRequestKey[request] ?? {}).map(([k, v]) => [k, round(v / per, 3)]),
    );
  const profile: LoadProfile = {
    date: new Date().toISOString(),
    lease_seconds: LEASE_SECONDS,
    requests: plain.map(({ where, key, tally }) => ({
      request: `${where} ${key}`,
      stage: stageOf(where, key),
      per_task: round(tally.requests, 3),
      messages: round(tally.messages, 3),
      rcu: round(tally.rcu, 3),
      write_units: landing(r.writeUnits, `${where} ${key}`, r.count.tasks),
    })),
    heartbeat: requestsOf(r.slow)
      .filter(({ where, key }) => !plainKeys.has(`${where} ${key}`))
      .map(({ where, key, tally }) => ({
        request: `${where} ${key}`,
        stage: "heartbeat" as const,
        per_task: round(tally.requests / r.heartbeats, 3),
        messages: round(tally.messages / r.heartbeats, 3),
        rcu: round(tally.rcu / r.heartbeats, 3),
        write_units: landing(r.slowUnits, `${where} ${key}`, r.heartbeats),
      })),
  };
  writeFileSync(resolve(ROOT, "bench/results/profile.json"), `${JSON.stringify(profile, null, 2)}\n`);
}

function perTaskOf(units: Record<string, number>, tasks: number) {
  return Object.fromEntries(Object.entries(units).map(([k, v]) => [k, round(v / tasks, 2)]));
}

function printSummary(
  results: Record<string, unknown> & { [k: string]: unknown },
  rows: {
    where: string;
    service: string;
    operation: string;
    detail: string;
    requests: number;
    rcu: number;
    wcu: number;
    floor: boolean;
  }[],
) {
  const f = (v: unknown) => (typeof v === "number" ? String(v) : JSON.stringify(v));
  const lines: [string, unknown][] = [
    ["submit_ms p50 / p99", `${results.submit_ms_p50} / ${results.submit_ms_p99}`],
    ["dispatch_ms p50 / p99", `${results.dispatch_ms_p50} / ${results.dispatch_ms_p99}`],
    ["tasks_per_second", results.tasks_per_second],
    [
      "floor: dispatch_ms p50 / tasks_per_second",
      `${results.floor_dispatch_ms_p50} / ${results.floor_tasks_per_second}`,
    ],
    [
      "dispatch_vs_floor_p50 / throughput_vs_floor",
      `${results.dispatch_vs_floor_p50} / ${results.throughput_vs_floor}`,
    ],
    ["requests_per_task (floor)", `${results.requests_per_task} (${FLOOR.requests})`],
    ["DynamoDB RCU / WCU per task", `${results.dynamodb_rcu_per_task} / ${results.dynamodb_wcu_per_task}`],
    [
      "usd_per_million_tasks (floor)",
      `${results.usd_per_million_tasks} (${results.floor_usd_per_million_tasks})`,
    ],
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  console.log("\nSwitchyard benchmark\n");
  for (const [k, v] of lines) console.log(`  ${k.padEnd(width)}  ${f(v).replaceAll('"', "")}`);
  const name = (row: (typeof rows)[number]) =>
    `${row.floor ? "*" : " "} ${row.where.padEnd(6)} ${row.service} ${row.operation} ${row.detail}`;
  const width2 = Math.max(...rows.map((row) => name(row).length));
  console.log(`\n  ${"requests per task (* the floor's six)".padEnd(width2)}    req    RCU    WCU`);
  for (const row of rows) {
    console.log(
      `  ${name(row).padEnd(width2)}  ${row.requests.toFixed(2).padStart(5)} ${row.rcu.toFixed(1).padStart(6)} ${row.wcu.toFixed(1).padStart(6)}`,
    );
  }
  console.log("\n  function        bundle_kb  cold_init_ms");
  const kb = results.bundle_kb as Record<string, number>;
  const ms = results.cold_init_ms as Record<string, number>;
  for (const name of Object.keys(kb))
    console.log(`  ${name.padEnd(15)} ${String(kb[name]).padStart(9)}  ${String(ms[name]).padStart(12)}`);
  console.log("");
}
