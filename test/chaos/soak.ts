/**
 * `npm run chaos`: a soak of the local stack under faults. It submits a mix of tasks (priorities,
 * concurrency keys, delays, recurring tasks, callbacks, cancels, failures) while it kills worker processes
 * at random and the fault injector fails AWS calls, then checks what happened from outside: the fake CLIs'
 * own start and exit log and their processes, not the database. Workflows run through the same faults:
 * fan-out, fan-in runs, one canceled midway, one watched over its live results stream. It prints a JSON
 * summary and exits 1 when any of lost, overlaps, counter_drift, orphans, missing_events or workflows is
 * not zero.
 *
 * SOAK_SECONDS (default 90) is how long it submits and kills; SOAK_TASKS (default 120) how many tasks.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { localCredentialsVariable } from "../../core/names.ts";
import { FAULT_ENV, type FaultRule } from "../../local/faults.ts";
import { startLocalStack } from "../../local/stack.ts";
import { FAKE_CLI_PATH } from "../support/fake-clis.ts";
import { alive } from "../support/wait.ts";
import { startReceiver } from "../support/webhook-receiver.ts";

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 90);
const SOAK_TASKS = Number(process.env.SOAK_TASKS ?? 120);
/** After the soak, how long everything may take to end (retries, leases, callbacks; claude runs 3 at once). */
const SETTLE_SECONDS = 240;
const TERMINAL = ["succeeded", "failed", "canceled", "completed"];

/** Claude's two pools hold 7 slots; the scope lets 3 of them run at once. */
const CLAUDE_LIMIT = 3;
const CONFIG = `concurrency_limits: { "tool:claude": ${CLAUDE_LIMIT} }
pools:
  - { name: alpha, tool: claude, account: main, max_concurrency: 4, lease_seconds: 10, retry: { base_seconds: 1, max_seconds: 4 }, worker: { slots: 4 } }
  - { name: beta, tool: claude, account: main, max_concurrency: 3, lease_seconds: 10, retry: { base_seconds: 1, max_seconds: 4 }, worker: { slots: 3 } }
  - { name: gamma, tool: codex, account: main, max_concurrency: 3, lease_seconds: 10, retry: { base_seconds: 1, max_seconds: 4 }, worker: { slots: 3 } }
`;

/** AWS faults, everywhere: the workers' clients and the stack's own (API, tick, events, callbacks). */
const FAULTS: FaultRule[] = [
  { service: "DynamoDB", operation: "TransactWriteItems", fault: "conflict", rate: 0.04 },
  { service: "DynamoDB", operation: "TransactWriteItems", fault: "timeout", when: "after", rate: 0.02 },
  { service: "DynamoDB", operation: "PutItem", fault: "throttling", rate: 0.04 },
  { service: "DynamoDB", operation: "Query", fault: "server", rate: 0.02 },
  { service: "SQS", operation: "ReceiveMessage", fault: "server", rate: 0.03 },
  { service: "SQS", operation: "DeleteMessage", fault: "timeout", rate: 0.05 },
  { service: "SQS", operation: "DeleteMessageBatch", fault: "timeout", rate: 0.05 },
  { service: "SQS", operation: "SendMessage", fault: "throttling", rate: 0.03 },
  { service: "S3", operation: "PutObject", fault: "server", rate: 0.05 },
  { service: "SNS", operation: "PublishBatch", fault: "throttling", rate: 0.03 },
];

type Kind = "ok" | "fail" | "cancel" | "recurring";
interface Submitted {
  uuid: string;
  tag: string;
  kind: Kind;
  key?: string;
  pool: string;
  callback: boolean;
  withFile: boolean;
}
interface Activity {
  event: "start" | "exit";
  tag: string | null;
  pid: number;
  at: number;
  code?: number | null;
}

const dir = mkdtempSync(join(tmpdir(), "switchyard-chaos-"));
const activityLog = join(dir, "cli-activity.jsonl");
const faultLog = join(dir, "faults.log");
const configPath = join(dir, "scheduler.config.yaml");
writeFileSync(configPath, CONFIG);
writeFileSync(activityLog, "");
writeFileSync(faultLog, "");
process.env[FAULT_ENV.rules] = JSON.stringify(FAULTS);
process.env[FAULT_ENV.log] = faultLog;
// The injected faults make the stack log errors by design; the summary is what counts.
process.env.POWERTOOLS_LOG_LEVEL = "SILENT";

const random = (n: number) => Math.floor(Math.random() * n);
const log = (message: string) =>
  process.stderr.write(`[chaos ${((Date.now() - t0) / 1000).toFixed(0)} s] ${message}\n`);
const t0 = Date.now();

const receiver = await startReceiver();
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const stack = await startLocalStack({
  port: 0,
  configPath,
  names: {
    table: `chaos-${randomUUID().slice(0, 8)}`,
    bucket: `chaos-${randomUUID().slice(0, 8)}`,
    topic: `chaos-${randomUUID().slice(0, 8)}`,
    queue: (pool) => `chaos-${pool}.fifo`,
  },
  workerEnv: {
    PATH: FAKE_CLI_PATH,
    [localCredentialsVariable("main")]: JSON.stringify({
      FAKE_CLI_LOG: activityLog,
      FAKE_CLI_STATE_DIR: dir,
    }),
  },
  callbackRetrySeconds: 2,
  log: quiet,
});
log(`stack up at ${stack.url}`);

// biome-ignore lint/suspicious/noExplicitAny: the soak reads answers field by field, as a client does.
type Answer = any;

/** A client as a user writes one: an idempotency key, and a retry on 5xx and on network errors. */
async function call(method: string, path: string, body?: unknown): Promise<{ status: number; data: Answer }> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`${stack.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${stack.adminKey}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = (await res.json()) as { data: Answer };
      if (res.status < 500 || attempt >= 8) return { status: res.status, data: json.data };
    } catch (err) {
      if (attempt >= 8) throw err;
    }
    await sleep(200 * attempt);
  }
}

const submitted: Submitted[] = [];
const keys = ["k1", "k2", "k3", "k4"];
async function submitOne(i: number) {
  const tag = `t${i}`;
  const roll = random(100);
  const kind: Kind = roll < 10 ? "fail" : roll < 20 ? "cancel" : roll < 28 ? "recurring" : "ok";
  const key = random(100) < 35 ? keys[random(keys.length)] : undefined;
  const callback = random(100) < 25;
  const seconds = kind === "cancel" ? 6 : random(4);
  const withFile = random(100) < 30;
  const write = withFile ? ` [write:out/r.txt=${tag}]` : "";
  const prompt = `[tag:${tag}] [sleep:${seconds}]${write}${kind === "fail" ? " [exit:2]" : ""} soak ${i}`;
  const body = {
    pool: ["alpha", "beta", "gamma"][random(3)],
    prompt,
    priority: 1 + random(9),
    idempotency_key: `soak-${i}`,
    max_attempts: kind === "fail" ? 2 : 6,
    ...(key && { concurrency_key: key }),
    ...(withFile && { output_files: ["out/r.txt"] }),
    ...(callback && { callback: `${receiver.url}/hook/${tag}` }),
    ...(random(100) < 20 && { scheduled_at: new Date(Date.now() + (2 + random(10)) * 1000).toISOString() }),
    ...(kind === "recurring" && { interval: 20, times: 2 }),
  };
  const res = await call("POST", "/v2/tasks", body);
  if (res.status !== 201 && res.status !== 200)
    throw new Error(`submit ${i}: ${res.status} ${JSON.stringify(res.data)}`);
  submitted.push({ uuid: res.data.uuid, tag, kind, key, pool: body.pool as string, callback, withFile });
  if (kind === "cancel") {
    void sleep(1000 + random(4000)).then(() => call("DELETE", `/v2/tasks/${res.data.uuid}`));
  }
}

/** The soak's workflows: a root, a fan of leaves that read its result, and a join, in any pool. */
const FLOW_RUNS = 3;
const FLOW_LEAVES = 6;
interface Flow {
  id: string;
  runId: string;
  streamUrl: string;
  nodes: string[];
  canceled: boolean;
}
const flows: Flow[] = [];
const flowTag = (run: number, node: string) => `wf${run}-${node}`;
async function startFlow(run: number, cancel: boolean) {
  const node = (name: string, extra: object = {}) => ({
    name,
    task: {
      pool: pools[random(pools.length)],
      prompt: `[tag:${flowTag(run, name)}] [sleep:1] ${name}`,
      max_attempts: 6,
    },
    ...extra,
  });
  const leaves = Array.from({ length: FLOW_LEAVES }, (_, i) => `leaf${i}`);
  const created = await call("POST", "/v2/workflows", {
    name: `soak ${run}`,
    tasks: [
      node("root"),
      ...leaves.map((name) => node(name, { inputs: { r: { from: "root.result" } } })),
      node("join"),
    ],
    edges: leaves.map((name) => ({ source: name, target: "join" })),
  });
  if (created.status !== 201)
    throw new Error(`workflow ${run}: ${created.status} ${JSON.stringify(created.data)}`);
  const started = await call("POST", `/v2/workflows/${created.data.workflow_id}/runs`);
  if (started.status !== 201)
    throw new Error(`run ${run}: ${started.status} ${JSON.stringify(started.data)}`);
  const flow = {
    id: created.data.workflow_id,
    runId: started.data.run_id,
    streamUrl: started.data.stream_url,
    nodes: ["root", ...leaves, "join"],
    canceled: cancel,
  };
  flows.push(flow);
  if (cancel) void sleep(4000).then(() => call("DELETE", `/v2/workflows/${flow.id}/runs/${flow.runId}`));
}

/** Follows a run's stream as a client does: again after `?after=` when it drops, dropping a seq it has had. */
async function followStream(streamUrl: string) {
  const messages: { type: string; seq: number; data: Record<string, unknown> }[] = [];
  const url = new URL(streamUrl, stack.url.replace("http", "ws"));
  for (let connects = 0; connects < 50; connects++) {
    url.searchParams.set("after", String(messages.at(-1)?.seq ?? 0));
    const ended = await new Promise<boolean>((done) => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${stack.adminKey}` } });
      let finished = false;
      ws.on("message", (text) => {
        const message = JSON.parse(String(text));
        if (message.seq <= (messages.at(-1)?.seq ?? 0)) return;
        messages.push(message);
        if (message.type === "finish_workflow") finished = true;
      });
      ws.on("error", () => undefined);
      ws.on("close", () => done(finished));
    });
    if (ended) break;
    await sleep(1000);
  }
  return messages;
}

/**
 * A run killed with SIGKILL logs no exit: the observer looks at every started CLI's pid ten times a
 * second, and takes the first time it finds it gone as its end.
 */
const seenDead = new Map<number, number>();
let watching = true;
const watcher = (async () => {
  while (watching) {
    for (const line of readFileSync(activityLog, "utf8").split("\n").filter(Boolean)) {
      const { event, pid } = JSON.parse(line) as Activity;
      if (event === "start" && !seenDead.has(pid) && !alive(pid)) seenDead.set(pid, Date.now());
    }
    await sleep(100);
  }
})();

// The soak: submissions spread over the time, and a worker killed every few seconds.
let workersKilled = 0;
const pools = ["alpha", "beta", "gamma"];
const killing = (async () => {
  while (Date.now() - t0 < SOAK_SECONDS * 1000) {
    await sleep(6000 + random(6000));
    const pid = stack.workerPid(pools[random(pools.length)] as string);
    if (pid && alive(pid)) {
      process.kill(pid, "SIGKILL");
      workersKilled++;
    }
  }
})();
const flowing = (async () => {
  await sleep(SOAK_SECONDS * 200);
  for (let run = 0; run < FLOW_RUNS; run++) await startFlow(run, run === 1);
  return followStream(flows[0]?.streamUrl as string);
})();
for (let i = 0; i < SOAK_TASKS; i++) {
  await submitOne(i);
  await sleep((SOAK_SECONDS * 1000 * 0.8) / SOAK_TASKS);
}
await killing;
log(`${submitted.length} tasks submitted, ${workersKilled} workers killed; waiting for them to end`);

const taskOf = async (uuid: string) => (await call("GET", `/v2/tasks/${uuid}`)).data;
const settleBy = Date.now() + SETTLE_SECONDS * 1000;
let tasks: Answer[] = [];
for (;;) {
  tasks = await Promise.all(submitted.map((s) => taskOf(s.uuid)));
  const open = tasks.filter((t) => !TERMINAL.includes(t.status)).length;
  if (open === 0 || Date.now() > settleBy) break;
  await sleep(2000);
}
const streamed = await flowing;
const flowRuns: Answer[] = [];
for (const flow of flows) {
  for (;;) {
    const run = (await call("GET", `/v2/workflows/${flow.id}/runs/${flow.runId}`)).data;
    const open = run.nodes.some((n: { status: string }) =>
      ["pending", "queued", "running"].includes(n.status),
    );
    if ((run.status !== "running" && !open) || Date.now() > settleBy) {
      flowRuns.push(run);
      break;
    }
    await sleep(2000);
  }
}
// Callbacks and events trail the transitions a little.
await sleep(8000);
watching = false;
await watcher;

// What the observer saw: each CLI run's interval, from its start to its exit (or until it was seen dead).
const activity = readFileSync(activityLog, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((line) => JSON.parse(line) as Activity);
const runsOf = new Map<string, { pid: number; start: number; end: number; code?: number | null }[]>();
const now = Date.now();
for (const a of activity.filter((x) => x.event === "start")) {
  const exit = activity.find((x) => x.event === "exit" && x.pid === a.pid && x.at >= a.at);
  const list = runsOf.get(a.tag ?? "?") ?? [];
  list.push({ pid: a.pid, start: a.at, end: exit?.at ?? seenDead.get(a.pid) ?? now, code: exit?.code });
  runsOf.set(a.tag ?? "?", list);
}

const problems: Record<string, string[]> = {
  lost: [],
  overlaps: [],
  scope_overrun: [],
  counter_drift: [],
  orphans: [],
  missing_events: [],
  workflows: [],
};
const overlap = (a: { start: number; end: number }, b: { start: number; end: number }) =>
  a.start < b.end && b.start < a.end;

for (const [i, s] of submitted.entries()) {
  const task = tasks[i];
  const runs = runsOf.get(s.tag) ?? [];
  const succeededRun = runs.some((r) => r.code === 0);
  const expected =
    s.kind === "fail"
      ? ["failed"]
      : s.kind === "cancel"
        ? ["canceled", "succeeded"]
        : s.kind === "recurring"
          ? ["completed"]
          : ["succeeded"];
  if (!TERMINAL.includes(task.status)) {
    // What it went through, to tell a slow backlog from a stuck task.
    const history = (await call("GET", `/v2/tasks/${s.uuid}/events?size=100`)).data?.events ?? [];
    const trail = history.map((e: { type: string; time: string }) => `${e.time.slice(11, 19)} ${e.type}`);
    problems.lost?.push(
      `${s.tag} ${s.uuid} still ${task.status} in ${task.pool}: ${trail.slice(-8).join(", ")}`,
    );
  } else if (!expected.includes(task.status))
    problems.lost?.push(`${s.tag} ${s.uuid} ended ${task.status}: ${task.error_message}`);
  else if (task.status === "succeeded" && !succeededRun)
    problems.lost?.push(`${s.tag} succeeded without a CLI exit 0`);
  else if (task.status === "succeeded" && s.withFile) {
    const file = await fetch(`${stack.url}/v2/tasks/${s.uuid}/files/out/r.txt`, {
      headers: { authorization: `Bearer ${stack.adminKey}` },
    });
    const text = await file.text();
    if (file.status !== 200 || text !== s.tag)
      problems.lost?.push(`${s.tag}: output file ${file.status} ${text}`);
  }
  for (const [a, b] of runs.flatMap((r, j) => runs.slice(j + 1).map((q) => [r, q] as const))) {
    if (overlap(a, b)) problems.overlaps?.push(`${s.tag}: pids ${a.pid} and ${b.pid} at once`);
  }
  for (const r of runs)
    if (alive(r.pid)) problems.orphans?.push(`${s.tag}: pid ${r.pid} alive after its task ended`);
  const events = (await call("GET", `/v2/tasks/${s.uuid}/events?size=100`)).data?.events ?? [];
  const types = new Set(events.map((e: { type: string }) => e.type));
  if (TERMINAL.includes(task.status) && !types.has(`task.${task.status}`)) {
    problems.missing_events?.push(`${s.tag}: no task.${task.status} event`);
  }
  if (s.callback && task.status !== "canceled" && task.run_id) {
    const got = receiver.calls.some((c) => c.path === `/hook/${s.tag}` && c.body.includes(task.run_id));
    if (!got) problems.missing_events?.push(`${s.tag}: no callback for run ${task.run_id}`);
  }
}
// Each workflow run ended as it should, every node's task ran (never two at once) or was canceled, and the
// watched run's stream had every message once, in order, with no gap.
for (const [r, flow] of flows.entries()) {
  const run = flowRuns[r];
  const bad = (message: string) => problems.workflows?.push(`run ${r} ${flow.runId}: ${message}`);
  if (run.status !== (flow.canceled ? "canceled" : "succeeded")) bad(`ended ${run.status}`);
  for (const node of run.nodes) {
    const runs = runsOf.get(flowTag(r, node.name)) ?? [];
    if (!flow.canceled && node.status !== "succeeded") bad(`${node.name} ${node.status}: ${node.error}`);
    if (node.status === "succeeded" && !runs.some((x) => x.code === 0))
      bad(`${node.name} without a CLI exit 0`);
    if (node.task_uuid) {
      const task = await taskOf(node.task_uuid);
      if (task.workflow?.run_id !== flow.runId || task.workflow?.node !== node.name)
        bad(`${node.name}'s task is not linked to it`);
      if (!TERMINAL.includes(task.status)) bad(`${node.name}'s task still ${task.status}`);
    }
    for (const [a, b] of runs.flatMap((x, j) => runs.slice(j + 1).map((y) => [x, y] as const))) {
      if (overlap(a, b))
        problems.overlaps?.push(`${flowTag(r, node.name)}: pids ${a.pid} and ${b.pid} at once`);
    }
    for (const x of runs)
      if (alive(x.pid)) problems.orphans?.push(`${flowTag(r, node.name)}: pid ${x.pid} alive`);
  }
}
const expectedStream = flows[0] ? flows[0].nodes.length * 2 + 1 : 0;
if (streamed.map((m) => m.seq).join() !== streamed.map((_, i) => i + 1).join())
  problems.workflows?.push(`stream seqs ${streamed.map((m) => m.seq).join(",")}`);
if (streamed.length !== expectedStream || streamed.at(-1)?.type !== "finish_workflow")
  problems.workflows?.push(
    `stream: ${streamed.length} messages of ${expectedStream}, last ${streamed.at(-1)?.type}`,
  );

// Runs of one key never overlap either.
for (const key of keys) {
  const runs = submitted
    .filter((s) => s.key === key)
    .flatMap((s) => (runsOf.get(s.tag) ?? []).map((r) => ({ ...r, tag: s.tag })));
  for (const [a, b] of runs.flatMap((r, j) => runs.slice(j + 1).map((q) => [r, q] as const))) {
    if (overlap(a, b)) problems.overlaps?.push(`key ${key}: ${a.tag} and ${b.tag} at once`);
  }
}
// Claude's CLIs never ran more at once, over both its pools, than its scope allows.
const claudeRuns = submitted
  .filter((s) => s.pool !== "gamma")
  .flatMap((s) => (runsOf.get(s.tag) ?? []).map((r) => ({ ...r, tag: s.tag })));
let claudeMostAtOnce = 0;
for (const run of claudeRuns) {
  const beside = claudeRuns.filter((other) => other.start <= run.start && run.start < other.end);
  claudeMostAtOnce = Math.max(claudeMostAtOnce, beside.length);
  if (beside.length > CLAUDE_LIMIT) {
    problems.scope_overrun?.push(`${beside.length} claude runs at once when ${run.tag} started`);
  }
}
// With every task ended, every counter is back at zero.
const { counters } = stack.deps;
for (const pool of pools) {
  const state = await counters.poolState(pool);
  if (state.active !== 0 || state.queued !== 0)
    problems.counter_drift?.push(`pool ${pool}: ${JSON.stringify(state)}`);
}
const tenant = tasks[0]?.tenant as string;
for (const key of keys) {
  const state = {
    ...(await counters.keyState(`${tenant}#${key}`)),
    ...(await counters.keyOpenTasks(`${tenant}#${key}`)),
  };
  if (Object.values(state).some((count) => count !== 0))
    problems.counter_drift?.push(`key ${key}: ${JSON.stringify(state)}`);
}
const claudeScope = await counters.scopeState("tool:claude");
if (claudeScope.active !== 0)
  problems.counter_drift?.push(`scope tool:claude: ${JSON.stringify(claudeScope)}`);
const queued = await counters.queuedCount(tenant);
if (queued !== 0) problems.counter_drift?.push(`tenant ${tenant}: ${queued} queued`);

const faults = readFileSync(faultLog, "utf8").split("\n").filter(Boolean);
const byFault: Record<string, number> = {};
for (const line of faults) byFault[line] = (byFault[line] ?? 0) + 1;
const summary = {
  seconds: Math.round((Date.now() - t0) / 1000),
  tasks: submitted.length,
  by_kind: Object.fromEntries(
    ["ok", "fail", "cancel", "recurring"].map((k) => [k, submitted.filter((s) => s.kind === k).length]),
  ),
  cli_runs: activity.filter((a) => a.event === "start").length,
  faults_injected: faults.length,
  faults: byFault,
  workers_killed: workersKilled,
  workflow_runs: flows.length,
  stream_messages: streamed.length,
  claude_most_at_once: claudeMostAtOnce,
  ...Object.fromEntries(Object.entries(problems).map(([name, list]) => [name, list.length])),
  details: Object.fromEntries(
    Object.entries(problems)
      .filter(([, list]) => list.length > 0)
      .map(([n, l]) => [n, l.slice(0, 10)]),
  ),
};
console.log(JSON.stringify(summary, null, 2));
await stack.stop();
await receiver.close();
const clean = Object.values(problems).every((list) => list.length === 0);
process.exit(clean ? 0 : 1);
