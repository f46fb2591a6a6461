/** The interfaces the domain needs. Adapters live in adapters/{aws,memory,net}. */

import type { SchedulerConfig } from "./config.ts";
import type { DomainEvent } from "./events.ts";
import type { AppliedConfig } from "./live-config.ts";
import type { PodSpec } from "./pods.ts";
import type { ApiKeyRecord, Run, Task, Tenant, WorkerKeyRecord, WorkerRecord } from "./records.ts";
import type { ScopeClaim } from "./scopes.ts";
import type { CallbackTarget, ResolvedAddress } from "./ssrf.ts";
import type { RunStatus, TaskStatus } from "./status.ts";
import type { TemplateRevision } from "./templates.ts";
import type { ToolAccount } from "./tool-accounts.ts";
import type { WorkflowQueueMessage } from "./workflow-queue.ts";
import type {
  NodeRun,
  NodeStatus,
  RunEdge,
  RunMessage,
  WorkflowRun,
  WorkflowRunStatus,
  WorkflowStarted,
} from "./workflow-runs.ts";
import type { WorkflowDef, WorkflowDefinition, WorkflowEdit } from "./workflows.ts";

export interface Clock {
  now(): Date;
}

export interface Ids {
  uuid(): string;
}

/** A write of a whole record, applied only if the stored version is `expectVersion` (absent: must not exist). */
export interface RecordWrite<T extends { version: number }> {
  next: T;
  expectVersion?: number;
}

/** Take one slot of a pool, and of a concurrency key, only while both are under their limits. */
export interface SlotClaim {
  pool: string;
  maxConcurrency: number;
  /** Already scoped to the tenant by the domain. */
  concurrencyKey?: string;
  keyLimit: number;
  /** Now (ISO): the pool slot is refused while the pool is paused past this time. */
  now: string;
  /** The slot's dispatch time (ISO), into the pool's held slots' times (PoolState.heldSince). */
  heldSince?: string;
  /** Refuse the slot (pool_closed) while any task waits queued in the pool. */
  noneQueued?: boolean;
  /** A slot of each of these concurrency scopes too, under its limit (else scope_busy). */
  scopes?: ScopeClaim[];
  /** A reservation of each of these daily budgets, while under it (else budget_spent, pool_budget_spent). */
  budgets?: BudgetClaim[];
  /** The admitted task's fair round: the round its pool has served at its priority (core/fair-share.ts). */
  fairRound?: { priority: number; round: number };
}

/**
 * Reserve `usd` and `tokens` of a daily budget (core/budgets.ts) while what its day has committed is under
 * each of its limits.
 */
export interface BudgetClaim {
  /** `tenant:<id>` or `pool:<name>`. */
  scope: string;
  /** The UTC day. */
  day: string;
  usd: number;
  tokens: number;
  limits: { usd?: number; tokens?: number };
  /** A pool's budget (its refusal closes the pool for the day), not a tenant's. */
  ofPool: boolean;
}

/**
 * A settled run's spend: into its tenant's usage of `day` in `pool`, and (with `hold`) the difference to
 * what its admission reserved into each budget it held, and its spend into its pool's cost sample.
 */
export interface SpendChange {
  tenant: string;
  pool: string;
  day: string;
  usd: number;
  tokens: number;
  hold?: { scopes: string[]; usd: number; tokens: number };
  cost?: { slot: number; usd: number; tokens: number };
  /** A run ended: it counts into its tenant's usage. False: a reservation given back unspent. */
  ran: boolean;
}

/** A run's spend, kept in its pool's bounded sample of recent budgeted runs. */
export interface CostSample {
  usd: number;
  tokens: number;
}

/** A budget's day (`sk` the day) or a tenant's usage of a day in a pool (`day#pool`). */
export interface SpendItem {
  scope: string;
  day: string;
  pool?: string;
  committed_usd: number;
  committed_tokens: number;
  usd: number;
  tokens: number;
  runs: number;
}

/**
 * One task into (+1) or out of (−1) `queued`: its tenant's and its pool's counts of queued tasks move.
 * With `limit`, an entry is refused (queued_quota) at that many of the tenant's. With `whilePoolFull` (the
 * pool's max_concurrency), an entry is refused (pool_has_room) unless that many of the pool's slots are
 * held: then the next slot given back finds it waiting, and its release admits it.
 */
export interface QueuedCountChange {
  tenant: string;
  pool: string;
  delta: 1 | -1;
  /** A queued task moving from this pool to `pool` (delta 1): the pools' counts move, the tenant's stays. */
  fromPool?: string;
  limit?: number;
  whilePoolFull?: number;
}

/**
 * A task enters (+1) or leaves (−1) the tasks waiting for its concurrency key (Task.key_parked). It
 * enters only while the key is busy (`busyAt`: at least this many slots held), else `key_free`.
 */
export interface KeyWaitChange {
  /** Already scoped to the tenant by the domain. */
  key: string;
  delta: 1 | -1;
  busyAt?: number;
}

/**
 * A task with a concurrency key is stored (+1) or ends (−1): the key's count of open (not terminal) tasks
 * moves. No task enters while an exclusive one is open, and an exclusive one enters only while none is
 * (else `key_exclusive`).
 */
export interface KeyOpenChange {
  /** Already scoped to the tenant by the domain. */
  key: string;
  delta: 1 | -1;
  exclusive: boolean;
}

/** Give back a slot taken by a SlotClaim. */
export interface SlotRelease {
  pool: string;
  concurrencyKey?: string;
  /** The dispatch time (ISO) of the run that held the slot: it leaves the pool's held slots' times. */
  heldSince?: string;
  /** The concurrency scopes whose slots it held (Task.held_scopes). */
  scopes?: string[];
  /**
   * Give it back only while no task waits for it: none queued in the pool, none parked on the key (else
   * `tasks_waiting`). Then no admission need follow.
   */
  whenNoneWaiting?: boolean;
}

/**
 * One ended run's times, kept in its pool's bounded sample of recent runs: how long it held its slot
 * (dispatch to end) and how long its start took (dispatch to running). It replaces the sample in `slot`
 * (0 ≤ slot < POOL_SAMPLE_SLOTS), so that the sample stays bounded without a read.
 */
export interface PoolSample {
  pool: string;
  slot: number;
  held_seconds: number;
  pickup_seconds: number;
  /** Its task's priority: how much of the pool's work would go before a task of a lower one. */
  priority: number;
}

/** A pool's recent runs, as its sample holds them (in no order). */
export interface PoolSamples {
  held: number[];
  pickup: number[];
  priority: number[];
}

/**
 * Pools of up to this many slots keep their held slots' times in the pool item, which then stays under one
 * write unit (every admission and release writes it); larger pools estimate without them.
 */
export const HELD_SINCE_POOL_LIMIT = 64;

/** How many recent runs a pool's sample keeps: few enough that they fit one write unit. */
export const POOL_SAMPLE_SLOTS = 48;

/**
 * A task's wait as it was (seconds, create_time to its first run's start), and as its submission predicted
 * it (expect ± error) when it had to queue and its pool could tell.
 */
export interface WaitOutcome {
  expect?: number;
  error?: number;
  actual: number;
}

/**
 * A task's first run started: its wait outcome goes into its pool's bounded record of recent ones, in the
 * slot (0 ≤ slot < WAIT_OUTCOME_SLOTS) its run id picks, as a PoolSample does.
 */
export interface WaitOutcomeSample extends WaitOutcome {
  pool: string;
  slot: number;
}

/** How many recent wait outcomes a pool keeps: few enough that they fit one write unit. */
export const WAIT_OUTCOME_SLOTS = 48;

export interface IdempotencyRecord {
  tenant: string;
  key: string;
  uuid: string;
  body_hash: string;
}

/** Everything one state change writes. The store applies it atomically, or not at all. */
export interface StateChange {
  tasks?: RecordWrite<Task>[];
  runs?: RecordWrite<Run>[];
  acquire?: SlotClaim;
  release?: SlotRelease;
  /** Must not exist yet. */
  idempotency?: IdempotencyRecord;
  /** The tenant's count of queued tasks moves with its tasks (see core/commit.ts). */
  queued?: QueuedCountChange;
  /** Appended to their task's event log; the relay publishes them (see core/commit.ts). */
  events?: DomainEvent[];
  /** The key's count of waiting tasks moves with its tasks (see core/commit.ts). */
  keyWait?: KeyWaitChange;
  /** The key's count of open tasks moves with its tasks (see core/commit.ts). */
  keyOpen?: KeyOpenChange;
  /** A run that ended goes into its pool's sample of recent runs (the wait estimates read it). */
  sample?: PoolSample;
  /** A settled run's spend: usage, budget reservations reconciled (core/budgets.ts). */
  spend?: SpendChange;
  /** A task's first run started after a predicted wait: the estimator's calibration reads it. */
  waitOutcome?: WaitOutcomeSample;
}

/** `pool_closed`: the pool takes no more work now (every slot is held, or it is paused). */
export type CommitConflictReason =
  | "task"
  | "run"
  | "pool_closed"
  | "key_busy"
  | "idempotency"
  | "queued_quota"
  | "key_free"
  | "tasks_waiting"
  | "pool_has_room"
  | "template"
  | "key_exclusive"
  | "scope_busy"
  | "config"
  | "workflow"
  | "account"
  | "budget_spent"
  | "pool_budget_spent";

/** A StateChange whose conditions did not hold; nothing was written. */
export class CommitConflict extends Error {
  constructor(readonly reason: CommitConflictReason) {
    super(`state change refused: ${reason}`);
    this.name = "CommitConflict";
  }
}

export interface PoolState {
  active: number;
  /**
   * When the runs holding its slots took them (epoch ms, a slot taken at the same millisecond as another
   * counts once): how far through its run each is. Kept for pools of up to HELD_SINCE_POOL_LIMIT slots.
   */
  heldSince: number[];
  /** Tasks waiting, queued, in the pool. */
  queued: number;
  /** ISO time until which nothing is admitted (a usage-limit reset). */
  pausedUntil?: string;
}

export interface Page<T> {
  items: T[];
  total: number;
  nextCursor?: string;
}

export interface TaskQuery {
  tenant: string;
  status?: TaskStatus;
  pool?: string;
  namespace?: string;
  tag?: { key: string; value: string };
  /** Only the tasks of this concurrency key (unscoped: the tenant's), newest first. */
  concurrencyKey?: string;
  size: number;
  /** Opaque; a cursor that this query did not produce is a ValidationError on `cursor`. */
  cursor?: string;
}

export interface RunQuery {
  tenant: string;
  taskUuid?: string;
  status?: RunStatus;
  size: number;
  cursor?: string;
}

/** A backing service that can say whether it answers (for GET /v2/health). */
export interface Pingable {
  ping(): Promise<void>;
}

/** Tasks and their runs: the records, their listings and queues, and every state change. */
export interface TaskStore extends Pingable {
  /**
   * Applies a StateChange atomically; throws CommitConflict when a condition fails. A transaction that
   * another one held an item of is tried again (a conflict of timing, not of state).
   */
  commit(change: StateChange): Promise<void>;
  getTask(uuid: string): Promise<Task | undefined>;
  /** Newest first within a status; without a status filter, grouped by status. */
  listTasks(query: TaskQuery): Promise<Page<Task>>;
  /** Queued tasks of a pool: highest priority first, then earliest ready_time. */
  readyTasks(pool: string, limit: number, after?: Task): Promise<Task[]>;
  /** How many of its pool's queued tasks are admitted before `task` (at most `max` are counted). */
  readyAhead(task: Task, max: number): Promise<number>;
  /** Tasks of one due shard whose due_time is at or before `before`, earliest first. */
  dueTasks(shard: number, before: string, limit: number, after?: Task): Promise<Task[]>;
  /** Queued tasks waiting for a (scoped) concurrency key to be free: highest priority first, then oldest. */
  keyWaitingTasks(key: string, limit: number): Promise<Task[]>;
  getRun(taskUuid: string, runId: string): Promise<Run | undefined>;
  /** With taskUuid: that task's runs, oldest first. Otherwise the tenant's runs, newest first. */
  listRuns(query: RunQuery): Promise<Page<Run>>;
}

/** The pause an admin sets: until resumed. */
export const PAUSED_INDEFINITELY = "9999-12-31T23:59:59.999Z";
/** The pause of a disabled account's pools: a limit's pause that lasts until an admin makes it available. */
export const ACCOUNT_DISABLED_UNTIL = "9999-12-31T00:00:00.000Z";

/** The counters: each pool's slots and pause, each tenant's queued tasks, and the rate windows. */
export interface CounterStore {
  /** Dispatched plus running tasks of the pool (as slot claims and releases counted them), and its pause. */
  poolState(pool: string): Promise<PoolState>;
  /** Pauses admission to the pool until `until` (ISO); an earlier pause never shortens a later one. */
  pausePool(pool: string, until: string): Promise<void>;
  /**
   * Pauses admission until a usage limit lifts at `until`: this replaces a previous limit's pause, shorter
   * or longer, but never an admin's (PAUSED_INDEFINITELY).
   */
  pauseForLimit(pool: string, until: string): Promise<void>;
  /** A (scoped) concurrency key: its slots held and its tasks waiting, read consistently. */
  keyState(key: string): Promise<{ active: number; waiting: number }>;
  /** A concurrency scope's slots held (SlotClaim.scopes). */
  scopeState(scope: string): Promise<{ active: number }>;
  /** A concurrency key's (scoped) open tasks and open exclusive ones (KeyOpenChange). */
  keyOpenTasks(key: string): Promise<{ open: number; exclusive: number }>;
  /** Lifts any pause of the pool. */
  resumePool(pool: string): Promise<void>;
  /** Lifts a usage limit's pause of the pool (pauseForLimit), never an admin's. */
  liftLimitPause(pool: string): Promise<void>;
  /**
   * What a task entering a pool's queue takes its fair round from: the round the pool last served at this
   * priority, and how many of the tenant's tasks are queued in the pool.
   */
  fairState(pool: string, tenant: string, priority: number): Promise<{ round: number; queued: number }>;
  /** A pool's recent budgeted runs' spend (SpendChange.cost), in no order. */
  costSamples(pool: string): Promise<CostSample[]>;
  /** A scope's spend items of the days from `fromDay` to `toDay` (inclusive): its days, and a tenant's by pool. */
  spend(scope: string, fromDay: string, toDay: string): Promise<SpendItem[]>;
  /** Every (tool, account)'s stored state (core/tool-accounts.ts), read consistently. */
  toolAccounts(): Promise<ToolAccount[]>;
  /** Stores an account's state on its version (absent: none may be stored), else CommitConflict("account"). */
  putToolAccount(write: RecordWrite<ToolAccount>): Promise<void>;
  /** The pool's sample of recent runs (StateChange.sample). */
  poolSamples(pool: string): Promise<PoolSamples>;
  /** The pool's recent wait outcomes (StateChange.waitOutcome), in no order. */
  waitOutcomes(pool: string): Promise<WaitOutcome[]>;
  /** The tenant's queued tasks, as its counter holds them (StateChange.queued). */
  queuedCount(tenant: string): Promise<number>;
  /**
   * Counts one unit of each counter in `limits`, in the fixed window of `scope` (a tenant) starting at
   * `windowStart` (ISO), only if every one is below its limit. Returns undefined when all were taken, else
   * the first counter (in `limits` order) at its limit, and nothing is counted. Atomic across callers (one
   * conditional update). The window's item expires at `expiresAt` (epoch seconds, the table's TTL attribute).
   */
  takeRateTokens(
    scope: string,
    windowStart: string,
    limits: RateLimits,
    expiresAt: number,
  ): Promise<RateCounter | undefined>;
}

/** The counters of a tenant's rate window (core/limits.ts). */
export type RateCounter = "requests" | "submissions";
export type RateLimits = Partial<Record<RateCounter, number>>;

/** The events each transition wrote (the outbox). */
export interface EventStore {
  /** A task's events, oldest first. */
  listEvents(taskUuid: string, size: number, cursor?: string): Promise<Page<DomainEvent>>;
}

/** Tenants and their API keys (stored hashed). */
export interface TenantStore {
  /** Creates the tenant and its first key atomically. */
  createTenant(tenant: Tenant, key: ApiKeyRecord): Promise<void>;
  getTenant(id: string): Promise<Tenant | undefined>;
  /** Sets a tenant's budget and weight (null removes one, absent leaves it); false when there is no such tenant. */
  setTenantSettings(
    id: string,
    settings: { budget?: Tenant["budget"] | null; weight?: number | null },
  ): Promise<boolean>;
  listTenants(): Promise<Tenant[]>;
  putApiKey(key: ApiKeyRecord): Promise<void>;
  /** A tenant's key, or a self-hosted worker's. */
  findApiKey(keyHash: string): Promise<ApiKeyRecord | WorkerKeyRecord | undefined>;
  listApiKeys(tenantId: string): Promise<ApiKeyRecord[]>;
  /** Marks the key revoked; false when the tenant has no such key. */
  revokeApiKey(tenantId: string, keyId: string, at: string): Promise<boolean>;
}

/** What a worker's report writes over its record; the rest (a drain, a registration) stays as it is. */
export type WorkerReportRecord = Pick<
  WorkerRecord,
  "worker_id" | "pool" | "running" | "jobs" | "started_at" | "last_seen" | "live_until" | "expires_at"
> & {
  /** A self-hosted worker's slots are its registration's: its reports leave them. */
  slots?: number;
};

/** The workers: their reports, and the self-hosted ones' registrations. */
export interface WorkerStore {
  /**
   * Writes a report over the worker's record, creating it unless `registered`; answers the record as it
   * now is, or undefined when a registered worker's record is gone (it was removed).
   */
  reportWorker(report: WorkerReportRecord, registered: boolean): Promise<WorkerRecord | undefined>;
  /** Creates a self-hosted worker's record and its key, together. */
  registerWorker(worker: WorkerRecord, key: WorkerKeyRecord): Promise<void>;
  getWorker(workerId: string): Promise<WorkerRecord | undefined>;
  /** Marks a worker draining; undefined when there is no such worker. */
  drainWorker(workerId: string): Promise<WorkerRecord | undefined>;
  /** Deletes a worker's record and its key, if it has one. */
  removeWorker(worker: WorkerRecord): Promise<void>;
  /** Every worker's record; an unregistered worker's only until it expires at `now` (epoch seconds). */
  listWorkers(now: number): Promise<WorkerRecord[]>;
}

/** Workflow definitions (core/workflows.ts): a record, and an item per node and per edge. */
export interface WorkflowStore {
  /** Creates the definition: its nodes and edges first, then its record (a conflict if the id is taken). */
  createWorkflow(definition: WorkflowDefinition): Promise<void>;
  /** The definition, nodes by name and edges; edges left by an edit cut short are left out. */
  getWorkflow(id: string): Promise<WorkflowDefinition | undefined>;
  /** A workflow's record alone (its tenant, name, version): one read, whatever its size. */
  getWorkflowDef(id: string): Promise<WorkflowDef | undefined>;
  /** Applies an edit on `def`'s version: a CommitConflict("workflow") when another edit came first. */
  editWorkflow(def: WorkflowDef, at: string, edit: WorkflowEdit): Promise<void>;
  /** A tenant's workflows, newest first. */
  listWorkflows(tenant: string): Promise<WorkflowDef[]>;
}

/** Workflow runs (core/workflow-runs.ts): a record, and an item per node run. */
export interface WorkflowRunStore {
  /**
   * Creates a run: its node runs and edges first, then its record with its `workflow.started` event (in one
   * transaction: the event is published, and starts the run, exactly when the run exists).
   */
  createWorkflowRun(
    run: WorkflowRun,
    nodes: NodeRun[],
    edges: RunEdge[],
    started: WorkflowStarted,
  ): Promise<void>;
  getWorkflowRun(
    runId: string,
  ): Promise<{ run: WorkflowRun; nodes: NodeRun[]; edges: RunEdge[] } | undefined>;
  getWorkflowRunRecord(runId: string): Promise<WorkflowRun | undefined>;
  getNodeRun(runId: string, name: string): Promise<NodeRun | undefined>;
  /** A workflow's runs, newest first. */
  listWorkflowRuns(workflowId: string): Promise<WorkflowRun[]>;
  /**
   * Moves a node run that is in one of `from` to `set` (false, and nothing written, when it is not). An
   * ending (`ended`) counts the node done, and failed, on its run in the same transaction.
   */
  moveNodeRun(
    runId: string,
    name: string,
    from: readonly NodeStatus[],
    set: Partial<NodeRun> & { status: NodeStatus },
    ended?: { failed: boolean },
  ): Promise<boolean>;
  /** The edges out of a node of the run. */
  listRunEdges(runId: string, source: string): Promise<RunEdge[]>;
  /**
   * Records on an edge how its parent ended, and counts it on its target (with `blocked`, the first
   * reason it cannot run), once however often it is asked; answers the target node run as it now is.
   */
  arriveAtNodeRun(runId: string, edge: RunEdge, outcome: NodeStatus, blocked?: string): Promise<NodeRun>;
  /** Ends a running workflow run; false when it had ended. */
  endWorkflowRun(runId: string, status: WorkflowRunStatus, at: string): Promise<boolean>;
  /**
   * Appends a message to the run's stream once per `key`, numbered next after the run's last (seq 1, 2, 3
   * with no gap: a message is stored with its number, so one seen means all before it are stored). Answers
   * its seq (undefined when the key has one already) and how many connections watch the run.
   */
  appendRunMessage(
    runId: string,
    key: string,
    message: Omit<RunMessage, "seq">,
  ): Promise<{ seq?: number; watchers: number }>;
  /** The run's messages after `after`, by seq. */
  listRunMessages(runId: string, after: number): Promise<RunMessage[]>;
  /** The keys the run's messages were appended under. */
  listRunMessageKeys(runId: string): Promise<Set<string>>;
  /** Stores a connection watching the run, and counts it on the run (which must exist). */
  addStreamConnection(runId: string, connection: StreamConnection): Promise<void>;
  /** The run's connections not yet expired at `now` (epoch seconds). */
  listStreamConnections(runId: string, now: number): Promise<StreamConnection[]>;
  /** Moves a connection's cursor from `from` to `to`; false when it was not at `from` (or is gone). */
  moveStreamCursor(runId: string, connectionId: string, from: number, to: number): Promise<boolean>;
  /** Forgets a connection, and its count on the run, once however often it is asked. */
  removeStreamConnection(runId: string, connectionId: string): Promise<void>;
}

/** A connection watching a run's stream: what it was sent up to. */
export interface StreamConnection {
  connection_id: string;
  /** The seq of the last message sent to it. */
  cursor: number;
  connected_at: string;
  /** Epoch seconds: the table's TTL, the gateway's longest connection. */
  expires_at: number;
}

/** The open connections of runs' streams: API Gateway's management API, or the local server's sockets. */
export interface StreamConnections {
  /** Sends one frame; false when the connection is gone (or is not open yet). */
  send(connectionId: string, frame: string): Promise<boolean>;
  close(connectionId: string): Promise<void>;
}

/** The workflows function's own queue (core/workflow-queue.ts), a message delayed by up to 900 s. */
export interface WorkflowQueue {
  send(message: WorkflowQueueMessage, delaySeconds?: number): Promise<void>;
}

/** Submissions by (tenant, idempotency key): written with the task, read on a replay. */
export interface IdempotencyStore {
  getIdempotency(tenant: string, key: string): Promise<IdempotencyRecord | undefined>;
}

/** Templates' revisions, immutable once stored (core/templates.ts). */
export interface TemplateStore {
  /**
   * Stores a revision, which must not exist yet, and (past revision 1) whose predecessor must: revisions
   * go 1, 2, 3 with no gap. A CommitConflict ("template") otherwise, and nothing is written.
   */
  putRevision(revision: TemplateRevision): Promise<void>;
  /** One revision of a tenant's template; the latest without `revision`. */
  getTemplate(tenant: string, name: string, revision?: number): Promise<TemplateRevision | undefined>;
  /** The latest revision of each of a tenant's templates, by name. */
  listTemplates(tenant: string): Promise<TemplateRevision[]>;
}

/** Every store port: what one table (or the in-memory fake) implements. */
export type Store = TaskStore &
  CounterStore &
  EventStore &
  TenantStore &
  WorkerStore &
  IdempotencyStore &
  TemplateStore &
  AppliedConfigStore &
  HeartbeatStore &
  WorkflowStore &
  WorkflowRunStore;

export interface QueueMessage {
  receiptHandle: string;
  body: string;
}

/** The per-pool SQS FIFO queues. */
export interface PoolQueue extends Pingable {
  /** dedupId = run_id; groupId = concurrency key or run_id. */
  send(pool: string, message: { body: string; dedupId: string; groupId: string }): Promise<void>;
  receive(pool: string, max: number, waitSeconds: number): Promise<QueueMessage[]>;
  /** Deletes received messages; several at once in batches (rejects if any was not deleted). */
  delete(pool: string, receiptHandles: string[]): Promise<void>;
  extendVisibility(pool: string, receiptHandle: string, seconds: number): Promise<void>;
  /** The messages of a pool's dead-letter queue, and how long ago the oldest of them was first sent. */
  deadLetters(pool: string): Promise<{ count: number; oldestAgeSeconds?: number }>;
}

export interface BlobInfo {
  key: string;
  size: number;
}

/** The SNS topic: every event, with message attributes tenant, pool, status and type. */
export interface EventBus {
  publish(events: DomainEvent[]): Promise<void>;
}

/** S3: logs, input and output files. */
export interface BlobStore extends Pingable {
  put(key: string, body: string | Uint8Array, contentType?: string): Promise<void>;
  /** undefined when there is no such object. */
  get(key: string): Promise<Uint8Array | undefined>;
  list(prefix: string): Promise<BlobInfo[]>;
  /**
   * A URL that GETs or PUTs one object for `seconds`, without credentials: a self-hosted worker moves a
   * job's files with them, straight to and from the store.
   */
  url(key: string, method: "GET" | "PUT", seconds: number, contentType?: string): Promise<string>;
}

/** One run of a pod task, to start in its container pool. */
export interface PodLaunch {
  pool: string;
  taskUuid: string;
  runId: string;
  pod: PodSpec;
}

/**
 * Runs pods: on AWS, ECS RunTask on Fargate; locally, a child process. How a pod ends comes back as a
 * PodStopped (on AWS, EventBridge's "ECS Task State Change"), never from polling.
 */
export interface ContainerRunner {
  /**
   * Starts the run's container, once per run id however often it is asked; resolves with the container's
   * id. Rejects when it cannot be started (the image's task definition, capacity), with ECS's reason.
   */
  start(launch: PodLaunch): Promise<{ containerId: string }>;
  /** Stops the run's container, if one runs (SIGTERM, then SIGKILL). Idempotent. */
  stop(pool: string, runId: string, reason: string): Promise<void>;
}

/** How a pod's container ended, as its compute reported it. */
export interface PodStopped {
  runId: string;
  containerId: string;
  /** null when the container never ran or was killed without one (its reason says why). */
  exitCode: number | null;
  /** Why it stopped, when it did not exit by itself or could not start. */
  reason?: string;
  durationMs: number;
}

/** A pod's log: on AWS the container's CloudWatch Logs stream. */
export interface PodLogs {
  /** The log so far, oldest first, up to `maxBytes`; empty when there is none (yet). */
  read(pool: string, containerId: string, maxBytes: number): Promise<string>;
  /** The last `maxBytes` of the log. */
  tail(pool: string, containerId: string, maxBytes: number): Promise<string>;
}

/** Every address a host name resolves to, as `dns.lookup(host, { all: true })` gives them. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** A webhook's HTTP POST. */
export interface WebhookRequest {
  body: string;
  headers: Record<string, string>;
  /** The whole exchange must end within this. */
  timeoutMs: number;
}

/**
 * Sends webhooks: one POST to a target the SSRF guard vetted, connecting only to its vetted addresses,
 * following no redirect. Resolves with the answer's status; rejects on a network error or timeout.
 */
export interface WebhookSender {
  post(target: CallbackTarget, request: WebhookRequest): Promise<number>;
}

/** The configuration a reload applied (core/live-config.ts): one versioned record. */
export interface AppliedConfigStore {
  appliedConfig(): Promise<AppliedConfig | undefined>;
  /**
   * Stores it if the stored one's version is `expectVersion` (absent: none may be stored), else a
   * CommitConflict ("config") and nothing is written.
   */
  applyConfig(config: AppliedConfig, expectVersion?: number): Promise<void>;
}

/** Where a reload reads the config: the file locally, an SSM parameter on AWS. */
export interface ConfigSource {
  /** The config as its source holds it now, validated (a ValidationError naming the source and field). */
  load(): Promise<SchedulerConfig>;
}

/** The parts that run on their own and report how they do (GET /v2/status). */
export type HeartbeatPart = "tick" | "events-relay";

/** What a part last reported of itself: when, and a few figures (the tick's run time, the relay's lag). */
export type Heartbeat = { at: string } & Record<string, number | string>;

export interface HeartbeatStore {
  recordHeartbeat(part: HeartbeatPart, beat: Heartbeat): Promise<void>;
  heartbeats(): Promise<Partial<Record<HeartbeatPart, Heartbeat>>>;
}
