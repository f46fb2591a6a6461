/**
 * The single table's key layout, shared by the DynamoDB adapter and its in-memory fake: every partition and
 * sort key written once, and the item of each record. Plain data only; no AWS SDK. Index names: TABLE.
 */

import { changeIdOf, type DomainEvent, EVENT_RETENTION_DAYS, eventId } from "../../core/events.ts";
import type { AppliedConfig } from "../../core/live-config.ts";
import { DUE_SHARDS, EVENT_SORT_KEY_PREFIX } from "../../core/names.ts";
import type { CostSample, PoolSamples, SpendItem, StreamConnection, WaitOutcome } from "../../core/ports.ts";
import {
  type ApiKeyRecord,
  dueAt,
  type Run,
  readyKeyOf,
  scopedConcurrencyKey,
  type Task,
  type Tenant,
  type WorkerKeyRecord,
  type WorkerRecord,
} from "../../core/records.ts";
import type { TemplateRevision } from "../../core/templates.ts";
import type { ToolAccount } from "../../core/tool-accounts.ts";
import type { NodeRun, RunEdge, WorkflowRun, WorkflowStarted } from "../../core/workflow-runs.ts";
import type {
  WorkflowDef,
  WorkflowDefinition,
  WorkflowEdge,
  WorkflowEdit,
  WorkflowNode,
} from "../../core/workflows.ts";

/** A stored item: a record's attributes plus its key attributes. */
export type Item = Record<string, unknown>;

export interface Key {
  pk: string;
  sk: string;
}

interface IndexKeys {
  gsi1pk?: string;
  gsi1sk?: string;
  gsi2pk?: string;
  gsi2sk?: string;
  gsi3pk?: string;
  gsi3sk?: string;
  gsi4pk?: string;
  gsi4sk?: string;
}

const KEY_ATTRIBUTES = [
  "pk",
  "sk",
  "gsi1pk",
  "gsi1sk",
  "gsi2pk",
  "gsi2sk",
  "gsi3pk",
  "gsi3sk",
  "gsi4pk",
  "gsi4sk",
];

/**
 * Shards of a tenant's task and run listings on the by-tenant index: a big tenant's transitions spread
 * over this many partitions, and a listing merges them.
 */
export const LISTING_SHARDS = 8;

/** The partition keys of the indexes (TABLE.indexes): byTenant, ready, due and byKey. */
export const PARTITIONS = {
  tenantTasks: (tenant: string, shard: number) => `T#${tenant}#TASK#${shard}`,
  tenantRuns: (tenant: string, shard: number) => `T#${tenant}#RUN#${shard}`,
  tenantKeys: (tenant: string) => `T#${tenant}#KEY`,
  tenantTemplates: (tenant: string) => `T#${tenant}#TEMPLATE`,
  tenantWorkflows: (tenant: string) => `T#${tenant}#WORKFLOW`,
  workflowRuns: (workflowId: string) => `WFRUNS#${workflowId}`,
  tenants: "TENANTS",
  workers: "WORKERS",
  ready: (pool: string) => `READY#${pool}`,
  /** Queued tasks waiting for a busy concurrency key (already scoped), on the ready index. */
  keyWaiting: (key: string) => `KEYWAIT#${key}`,
  /** Queued tasks waiting for their tenant's daily budget (core/budgets.ts), on the ready index. */
  budgetWaiting: (tenant: string) => `BUDGETWAIT#${tenant}`,
  due: (shard: number) => `DUE#${shard}`,
  /** The tasks of a concurrency key (already scoped), on the by-key index. */
  keyTasks: (key: string) => `CK#${key}`,
} as const;

/** Sort-key prefixes of the items in a task's partition: the task itself is `TASK`. */
export const TASK_PARTITION = { runs: "RUN#", events: EVENT_SORT_KEY_PREFIX } as const;

/** A stable FNV-1a hash of an id. */
function hashOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** The due-index shard of a task. */
export const dueShard = (uuid: string) => hashOf(uuid) % DUE_SHARDS;

/** The listing shard of a task (by uuid) or a run (by run id). */
export const listingShard = (id: string) => hashOf(id) % LISTING_SHARDS;

/** The by-tenant partitions of a task and of a run: their tenant's, in their listing shard. */
const taskListingPartition = (task: Pick<Task, "tenant" | "uuid">) =>
  PARTITIONS.tenantTasks(task.tenant, listingShard(task.uuid));
const runListingPartition = (run: Pick<Run, "tenant" | "run_id">) =>
  PARTITIONS.tenantRuns(run.tenant, listingShard(run.run_id));

export const taskKey = (uuid: string): Key => ({ pk: `TASK#${uuid}`, sk: "TASK" });
export const runKey = (taskUuid: string, runId: string): Key => ({
  pk: taskKey(taskUuid).pk,
  sk: `${TASK_PARTITION.runs}${runId}`,
});
export const poolKey = (pool: string): Key => ({ pk: `POOL#${pool}`, sk: "POOL" });
/** Apart from the pool item's partition, which every admission and release writes. */
export const poolSamplesKey = (pool: string): Key => ({ pk: `SAMPLES#${pool}`, sk: "SAMPLES" });
/** A pool sample's attributes, short so that its runs fit one write unit: `h7`, `p7`, `r7` for slot 7. */
const SAMPLE_PREFIX = { held: "h", pickup: "p", priority: "r" } as const;
export const sampleAttribute = (kind: keyof PoolSamples, slot: number) => `${SAMPLE_PREFIX[kind]}${slot}`;
/** The samples an item holds, by their attribute names. */
export const samplesOf = (item: Record<string, unknown> | undefined): PoolSamples => {
  const of = (kind: keyof PoolSamples) =>
    Object.entries(item ?? {})
      .filter(
        ([name, value]) =>
          /^\d+$/.test(name.slice(1)) && name[0] === SAMPLE_PREFIX[kind] && typeof value === "number",
      )
      .map(([, value]) => value as number);
  return { held: of("held"), pickup: of("pickup"), priority: of("priority") };
};
/** A pool item's set of its held slots' dispatch times (epoch ms). */
export const HELD_SINCE = "held_since";
export const heldSinceOf = (item: Record<string, unknown> | undefined): number[] => {
  const held = item?.[HELD_SINCE];
  return held instanceof Set ? [...held].map(Number) : [];
};
/** A pool's recent wait outcomes, apart from its sample so that each fits one write unit. */
export const waitOutcomesKey = (pool: string): Key => ({ pk: `WAITS#${pool}`, sk: "WAITS" });
/** A wait outcome's attribute, `w7` for slot 7: the list [expect, error, actual], or [actual] unpredicted. */
export const waitOutcomeAttribute = (slot: number) => `w${slot}`;
export const waitOutcomesOf = (item: Record<string, unknown> | undefined): WaitOutcome[] =>
  Object.entries(item ?? {}).flatMap(([name, value]) =>
    !/^w\d+$/.test(name) || !Array.isArray(value)
      ? []
      : value.length === 3
        ? [{ expect: Number(value[0]), error: Number(value[1]), actual: Number(value[2]) }]
        : value.length === 1
          ? [{ actual: Number(value[0]) }]
          : [],
  );
export const concurrencyKeyKey = (key: string): Key => ({ pk: `CKEY#${key}`, sk: "CKEY" });
/** What a part (the tick, the events relay) last reported of itself: one item each, in one partition. */
export const HEARTBEAT_PARTITION = "HEARTBEAT";
export const heartbeatKey = (part: string): Key => ({ pk: HEARTBEAT_PARTITION, sk: part });
/** The configuration a reload applied: one item, its config as JSON text. */
export const appliedConfigKey: Key = { pk: "CONFIG", sk: "APPLIED" };
export const appliedConfigItem = ({ config, ...rest }: AppliedConfig): Item & Key => ({
  ...rest,
  config_json: JSON.stringify(config),
  ...appliedConfigKey,
});
export const appliedConfigOf = (item: Item | undefined): AppliedConfig | undefined =>
  item && {
    version: item.version as number,
    base: item.base as string,
    config: JSON.parse(item.config_json as string),
    applied_at: item.applied_at as string,
  };
/**
 * A daily budget's or a tenant's usage: one partition per scope (`tenant:<id>`, `pool:<name>`), an item per
 * day (`2026-12-03`: the committed spend a budget checks) and, for a tenant, per day and pool
 * (`2026-12-03#claude-main`: its usage there).
 */
export const spendKey = (scope: string, day: string, pool?: string): Key => ({
  pk: `SPEND#${scope}`,
  sk: pool === undefined ? day : `${day}#${pool}`,
});
export const spendItemOf = (item: Item): SpendItem => {
  const [day, pool] = String(item.sk).split("#");
  return {
    scope: String(item.pk).slice("SPEND#".length),
    day: day as string,
    ...(pool !== undefined && { pool }),
    committed_usd: Number(item.committed_usd ?? 0),
    committed_tokens: Number(item.committed_tokens ?? 0),
    usd: Number(item.usd ?? 0),
    tokens: Number(item.tokens ?? 0),
    runs: Number(item.runs ?? 0),
  };
};
/** A pool's recent budgeted runs' spend, apart from its sample: `c7` = [usd, tokens] for slot 7. */
export const costSamplesKey = (pool: string): Key => ({ pk: `COSTS#${pool}`, sk: "COSTS" });
export const costAttribute = (slot: number) => `c${slot}`;
export const costSamplesOf = (item: Record<string, unknown> | undefined): CostSample[] =>
  Object.entries(item ?? {})
    .filter(([name, value]) => /^c\d+$/.test(name) && Array.isArray(value))
    .map(([, value]) => ({ usd: Number((value as number[])[0]), tokens: Number((value as number[])[1]) }));

/** The tool accounts' states (core/tool-accounts.ts): one item each, in one partition. */
export const TOOL_ACCOUNT_PARTITION = "TOOLACCOUNT";
export const toolAccountKey = (tool: string, account: string): Key => ({
  pk: TOOL_ACCOUNT_PARTITION,
  sk: `${tool}#${account}`,
});
export const toolAccountItem = (record: ToolAccount): Item & Key => ({
  ...compact(record),
  ...toolAccountKey(record.tool, record.account),
});
/** A concurrency scope's slots held (core/scopes.ts), over all pools. */
export const scopeKey = (scope: string): Key => ({ pk: `SCOPE#${scope}`, sk: "SCOPE" });
/** How many of a concurrency key's tasks are not yet terminal, and whether one of them is exclusive. */
export const keyOpenTasksKey = (key: string): Key => ({ pk: `CKEY#${key}`, sk: "OPEN" });
export const queuedCountKey = (tenant: string): Key => ({ pk: `TENANT#${tenant}`, sk: "QUEUED" });
/** A tenant's queued tasks in one pool, beside its total on its queued-count item. */
export const queuedInPoolAttribute = (pool: string) => `queued@${pool}`;
/** The fair round a pool last served at a priority, on its pool item (core/fair-share.ts). */
export const fairRoundAttribute = (priority: number) => `fair_round_${priority}`;
export const idempotencyKey = (tenant: string, key: string): Key => ({
  pk: `IDEM#${tenant}#${key}`,
  sk: "IDEM",
});
export const tenantKey = (id: string): Key => ({ pk: `TENANT#${id}`, sk: "TENANT" });
export const apiKeyKey = (keyHash: string): Key => ({ pk: `KEY#${keyHash}`, sk: "KEY" });
export const workerKey = (workerId: string): Key => ({ pk: `WORKER#${workerId}`, sk: "WORKER" });
/**
 * One fixed window of a tenant's rate counters (core/limits.ts): one attribute per counter (`requests`,
 * `submissions`) and the TTL `expires_at`.
 */
export const rateKey = (scope: string, windowStart: string): Key => ({
  pk: `RATE#${scope}#${windowStart}`,
  sk: "RATE",
});

/** A queued task's place in its ready queue (core/records.ts readyKeyOf). */
export const readySortKey = (task: Task) => readyKeyOf(task);

/** A task's keys on the by-key index, if it has a concurrency key. */
export const keyTasksKeys = (task: Pick<Task, "tenant" | "concurrency_key" | "create_time" | "uuid">) => {
  const key = scopedConcurrencyKey(task);
  return key === undefined
    ? {}
    : { gsi4pk: PARTITIONS.keyTasks(key), gsi4sk: `${task.create_time}#${task.uuid}` };
};

/** All keys of a task, derived from the whole record: the ready, due and by-key indexes are sparse. */
function taskKeys(task: Task): Key & IndexKeys {
  return {
    ...taskKey(task.uuid),
    gsi1pk: taskListingPartition(task),
    gsi1sk: `${task.status}#${task.create_time}#${task.uuid}`,
    ...(task.status === "queued" && {
      gsi2pk: task.key_parked
        ? PARTITIONS.keyWaiting(scopedConcurrencyKey(task) as string)
        : task.budget_parked
          ? PARTITIONS.budgetWaiting(task.tenant)
          : PARTITIONS.ready(task.pool),
      gsi2sk: readySortKey(task),
    }),
    ...(dueAt(task) !== undefined && {
      gsi3pk: PARTITIONS.due(dueShard(task.uuid)),
      gsi3sk: `${dueAt(task)}#${task.uuid}`,
    }),
    ...keyTasksKeys(task),
  };
}

export const taskItem = (task: Task): Item & Key => ({ ...compact(task), ...taskKeys(task) });

/**
 * The by-tenant partition a stored task or run item belongs in (its listing shard), from the attributes
 * that name it (`sk`, `tenant`, `uuid` or `run_id`); undefined for any other item.
 */
export function listingPartitionOf(item: Item): string | undefined {
  const { sk, tenant, uuid, run_id: runId } = item as Record<string, string | undefined>;
  if (tenant === undefined) return undefined;
  if (sk === "TASK" && uuid !== undefined) return taskListingPartition({ tenant, uuid });
  if (sk?.startsWith(TASK_PARTITION.runs) && runId !== undefined) {
    return runListingPartition({ tenant, run_id: runId });
  }
  return undefined;
}
export const runItem = (run: Run): Item & Key => ({
  ...compact(run),
  ...runKey(run.task_uuid, run.run_id),
  gsi1pk: runListingPartition(run),
  gsi1sk: `${run.status}#${run.create_time}#${run.run_id}`,
});
export const tenantItem = (tenant: Tenant): Item & Key => ({
  ...compact(tenant),
  ...tenantKey(tenant.id),
  gsi1pk: PARTITIONS.tenants,
  gsi1sk: `${tenant.create_time}#${tenant.id}`,
});
export const apiKeyItem = (key: ApiKeyRecord): Item & Key => ({
  ...compact(key),
  ...apiKeyKey(key.key_hash),
  gsi1pk: PARTITIONS.tenantKeys(key.tenant_id),
  gsi1sk: key.key_id,
});
/** A worker's key is found by its hash like a tenant's, and is in no tenant's listing. */
export const workerKeyItem = (key: WorkerKeyRecord): Item & Key => ({
  ...compact(key),
  ...apiKeyKey(key.key_hash),
});
export const workerItem = (worker: Pick<WorkerRecord, "worker_id" | "pool">): Item & Key => ({
  ...compact(worker),
  ...workerKey(worker.worker_id),
  gsi1pk: PARTITIONS.workers,
  gsi1sk: `${worker.pool}#${worker.worker_id}`,
});

/** A workflow's definition, its nodes and its edges share its partition (node names hold no `#`). */
export const WORKFLOW_PARTITION = { def: "DEF", nodes: "NODE#", edges: "EDGE#" } as const;
const workflowPk = (id: string) => `WF#${id}`;
export const workflowKey = (id: string): Key => ({ pk: workflowPk(id), sk: WORKFLOW_PARTITION.def });
export const workflowNodeKey = (id: string, name: string): Key => ({
  pk: workflowPk(id),
  sk: `${WORKFLOW_PARTITION.nodes}${name}`,
});
export const workflowEdgeKey = (id: string, source: string, target: string): Key => ({
  pk: workflowPk(id),
  sk: `${WORKFLOW_PARTITION.edges}${source}#${target}`,
});
export const workflowItem = (def: WorkflowDef): Item & Key => ({
  ...compact(def),
  ...workflowKey(def.workflow_id),
  gsi1pk: PARTITIONS.tenantWorkflows(def.tenant),
  gsi1sk: `${def.create_time}#${def.workflow_id}`,
});
export const workflowNodeItem = (id: string, node: WorkflowNode): Item & Key => ({
  ...compact(node),
  ...workflowNodeKey(id, node.name),
});
export const workflowEdgeItem = (id: string, edge: WorkflowEdge): Item & Key => ({
  ...compact(edge),
  ...workflowEdgeKey(id, edge.source, edge.target),
});

/** A definition from its partition's items, or undefined without its record. */
export function workflowOf(items: Item[]): WorkflowDefinition | undefined {
  const record = items.find((item) => item.sk === WORKFLOW_PARTITION.def);
  if (!record) return undefined;
  const nodes = items
    .filter((item) => String(item.sk).startsWith(WORKFLOW_PARTITION.nodes))
    .map((item) => recordOf<WorkflowNode>(item));
  const names = new Set(nodes.map((n) => n.name));
  const edges = items
    .filter((item) => String(item.sk).startsWith(WORKFLOW_PARTITION.edges))
    .map((item) => recordOf<WorkflowEdge>(item))
    .filter((e) => names.has(e.source) && names.has(e.target));
  return { def: recordOf<WorkflowDef>(record), nodes, edges };
}

/** The items an edit puts and the keys it deletes, beside the record's version bump. */
export function workflowEditItems(id: string, edit: WorkflowEdit) {
  return {
    puts: [
      ...(edit.putNodes ?? []).map((node) => workflowNodeItem(id, node)),
      ...(edit.putEdges ?? []).map((edge) => workflowEdgeItem(id, edge)),
    ],
    deletes: [
      ...(edit.deleteNodes ?? []).map((name) => workflowNodeKey(id, name)),
      ...(edit.deleteEdges ?? []).map((e) => workflowEdgeKey(id, e.source, e.target)),
    ],
  };
}

/** A workflow run's record and its node runs share its partition. */
const workflowRunPk = (runId: string) => `WFRUN#${runId}`;
/** The sort keys of a run's partition: its record, its node runs, its stream's messages and connections. */
export const WORKFLOW_RUN_PARTITION = {
  run: "RUN",
  nodes: "NODE#",
  edges: "EDGE#",
  messages: "MSG#",
  messageKeys: "MSGKEY#",
  connections: "CONN#",
} as const;
export const workflowRunKey = (runId: string): Key => ({
  pk: workflowRunPk(runId),
  sk: WORKFLOW_RUN_PARTITION.run,
});
export const nodeRunKey = (runId: string, name: string): Key => ({
  pk: workflowRunPk(runId),
  sk: `${WORKFLOW_RUN_PARTITION.nodes}${name}`,
});
export const workflowRunItem = (run: WorkflowRun): Item & Key => ({
  ...compact(run),
  ...workflowRunKey(run.run_id),
  gsi1pk: PARTITIONS.workflowRuns(run.workflow_id),
  gsi1sk: `${run.create_time}#${run.run_id}`,
});
/** A workflow run's `workflow.started` event, in its partition: the relay publishes it as any other. */
export const workflowRunEventItem = (event: WorkflowStarted) =>
  eventLogItem([event], workflowRunKey(event.workflow.run_id).pk);
/** A run's stream messages by seq, and the key each message was appended under (so it is appended once). */
export const runMessageKey = (runId: string, seq: number): Key => ({
  pk: workflowRunPk(runId),
  sk: `${WORKFLOW_RUN_PARTITION.messages}${String(seq).padStart(9, "0")}`,
});
export const runMessageMarkKey = (runId: string, key: string): Key => ({
  pk: workflowRunPk(runId),
  sk: `${WORKFLOW_RUN_PARTITION.messageKeys}${key}`,
});
/** A connection watching a run's stream, in the run's partition (it expires with the gateway's connection). */
export const streamConnectionKey = (runId: string, connectionId: string): Key => ({
  pk: workflowRunPk(runId),
  sk: `${WORKFLOW_RUN_PARTITION.connections}${connectionId}`,
});
export const streamConnectionItem = (runId: string, connection: StreamConnection): Item & Key => ({
  ...connection,
  ...streamConnectionKey(runId, connection.connection_id),
});
export const nodeRunItem = (node: NodeRun): Item & Key => ({
  ...compact(node),
  ...nodeRunKey(node.run_id, node.name),
});
/** A run's edge, under its source (whose ending reads its out-edges by prefix). */
export const runEdgeKey = (runId: string, source: string, target: string): Key => ({
  pk: workflowRunPk(runId),
  sk: `${WORKFLOW_RUN_PARTITION.edges}${source}#${target}`,
});
export const runEdgeItem = (runId: string, edge: RunEdge): Item & Key => ({
  ...compact(edge),
  ...runEdgeKey(runId, edge.source, edge.target),
});

/** A workflow run and its node runs from its partition's items, or undefined without its record. */
export function workflowRunOf(
  items: Item[],
): { run: WorkflowRun; nodes: NodeRun[]; edges: RunEdge[] } | undefined {
  const record = items.find((item) => item.sk === WORKFLOW_RUN_PARTITION.run);
  if (!record) return undefined;
  const of = <T>(prefix: string) =>
    items.filter((item) => String(item.sk).startsWith(prefix)).map((item) => recordOf<T>(item));
  return {
    run: recordOf<WorkflowRun>(record),
    nodes: of<NodeRun>(WORKFLOW_RUN_PARTITION.nodes),
    edges: of<RunEdge>(WORKFLOW_RUN_PARTITION.edges),
  };
}

/** A template's revisions share its partition; the sort key orders them (and the listing, by name). */
const revisionSortKey = (revision: number) => `REV#${String(revision).padStart(6, "0")}`;
export const templateKey = (tenant: string, name: string, revision: number): Key => ({
  pk: `TEMPLATE#${tenant}#${name}`,
  sk: revisionSortKey(revision),
});
export const templateItem = (template: TemplateRevision): Item & Key => ({
  ...compact(template),
  ...templateKey(template.tenant, template.name, template.revision),
  gsi1pk: PARTITIONS.tenantTemplates(template.tenant),
  gsi1sk: `${template.name}#${revisionSortKey(template.revision)}`,
});

/** The fields that every event of one change shares: stored once on its log item. */
const SHARED_EVENT_FIELDS = ["tenant", "pool", "task_uuid", "name", "callback", "time"] as const;

/**
 * The events of one change, in one item of their task's partition (so a task's log is one Query), keyed by
 * the change (see changeIdOf); they expire after the retention. The stream brings the item to the relay.
 * A workflow run's own event goes in the run's partition (`pk`).
 */
export function eventLogItem(events: DomainEvent[], pk?: string): Item & Key {
  const [first] = events;
  if (!first) throw new Error("an event log item holds at least one event");
  const shared = Object.fromEntries(SHARED_EVENT_FIELDS.map((field) => [field, first[field]]));
  const own = events.map((event) => {
    const rest: Partial<DomainEvent> = { ...event, id: undefined };
    for (const field of SHARED_EVENT_FIELDS) delete rest[field];
    return compact(rest);
  });
  return {
    ...compact(shared),
    events: own,
    count: events.length,
    pk: pk ?? taskKey(first.task_uuid).pk,
    sk: `${TASK_PARTITION.events}${changeIdOf(first.id)}`,
    expires_at: Math.floor(Date.parse(first.time) / 1000) + EVENT_RETENTION_DAYS * 86_400,
  };
}

/** The events of a log item. An item without `events` is of the older layout: one event per item. */
export function eventsOfLogItem(item: Item): DomainEvent[] {
  const { events, count: _count, expires_at: _expires, ...rest } = recordOf<Item>(item);
  if (!Array.isArray(events)) return [rest as unknown as DomainEvent];
  const changeId = (item.sk as string).slice(TASK_PARTITION.events.length);
  return events.map((own, index) => ({ ...rest, ...own, id: eventId(changeId, index) }) as DomainEvent);
}

/** The record stored in an item: its attributes without the key attributes. */
export function recordOf<T>(item: Item): T {
  return Object.fromEntries(Object.entries(item).filter(([name]) => !KEY_ATTRIBUTES.includes(name))) as T;
}

/** A deep copy of plain data without undefined values (DynamoDB stores none). */
export function compact<T>(value: T): T {
  if (Array.isArray(value)) return value.map(compact) as T;
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, compact(v)]),
  ) as T;
}
