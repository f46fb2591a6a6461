/** TaskStore and TenantStore in memory, for unit tests: the DynamoDB adapter's items, keys and listings. */

import type { DomainEvent } from "../../core/events.ts";
import type { AppliedConfig } from "../../core/live-config.ts";
import type {
  CostSample,
  Heartbeat,
  HeartbeatPart,
  IdempotencyRecord,
  Page,
  PoolSamples,
  PoolState,
  RateCounter,
  RateLimits,
  RecordWrite,
  RunQuery,
  SpendItem,
  StateChange,
  StreamConnection,
  TaskQuery,
  TaskStore,
  TenantStore,
  WaitOutcome,
  WorkerReportRecord,
} from "../../core/ports.ts";
import { CommitConflict, PAUSED_INDEFINITELY } from "../../core/ports.ts";
import type { ApiKeyRecord, Run, Task, Tenant, WorkerKeyRecord, WorkerRecord } from "../../core/records.ts";
import type { TemplateRevision } from "../../core/templates.ts";
import type { ToolAccount } from "../../core/tool-accounts.ts";
import type {
  NodeRun,
  NodeStatus,
  RunEdge,
  RunMessage,
  WorkflowRun,
  WorkflowRunStatus,
  WorkflowStarted,
} from "../../core/workflow-runs.ts";
import type { WorkflowDef, WorkflowDefinition, WorkflowEdit } from "../../core/workflows.ts";
import {
  apiKeyItem,
  apiKeyKey,
  appliedConfigItem,
  appliedConfigKey,
  appliedConfigOf,
  compact,
  concurrencyKeyKey,
  costSamplesKey,
  costSamplesOf,
  fairRoundAttribute,
  HELD_SINCE,
  heartbeatKey,
  heldSinceOf,
  type Item,
  idempotencyKey,
  type Key,
  keyOpenTasksKey,
  nodeRunItem,
  nodeRunKey,
  poolKey,
  poolSamplesKey,
  queuedCountKey,
  queuedInPoolAttribute,
  rateKey,
  recordOf,
  runEdgeItem,
  runEdgeKey,
  runKey,
  runMessageKey,
  runMessageMarkKey,
  samplesOf,
  scopeKey,
  spendItemOf,
  spendKey,
  streamConnectionItem,
  streamConnectionKey,
  TOOL_ACCOUNT_PARTITION,
  taskItem,
  taskKey,
  templateItem,
  templateKey,
  tenantItem,
  tenantKey,
  toolAccountItem,
  WORKFLOW_RUN_PARTITION,
  waitOutcomesKey,
  waitOutcomesOf,
  workerItem,
  workerKey,
  workerKeyItem,
  workflowEditItems,
  workflowItem,
  workflowKey,
  workflowOf,
  workflowRunEventItem,
  workflowRunItem,
  workflowRunKey,
  workflowRunOf,
} from "../table/keys.ts";
import {
  apiKeysListing,
  compareKeys,
  decodeEventCursor,
  decodePositions,
  dueListing,
  eventCountOf,
  eventItemsFor,
  eventsListing,
  eventsPageOf,
  keyNamesOf,
  keyWaitingListing,
  type Listing,
  latestRevisions,
  mergedPageOf,
  readyAheadListing,
  readyListing,
  runEdgesListing,
  runListings,
  runMessageKeysListing,
  runMessagesListing,
  startAfter,
  streamConnectionsListing,
  taskListings,
  templateRevisionsListing,
  templatesListing,
  tenantsListing,
  workersListing,
  workflowListing,
  workflowRunListing,
  workflowRunsListing,
  workflowsListing,
} from "../table/listings.ts";
import {
  alreadyExists,
  type Counter,
  conflictOf,
  keyOfWrite,
  type Write,
  writesOf,
} from "../table/writes.ts";

const idOf = ({ pk, sk }: Key) => `${pk}\u0000${sk}`;
const counterOf = (item: Item | undefined, counter: Counter = "active") =>
  (item?.[counter] as number | undefined) ?? 0;
const valueAt = (item: Item, path: string[]) =>
  path.reduce<unknown>((value, name) => (value instanceof Object ? (value as Item)[name] : undefined), item);

export class MemoryStore implements TaskStore, TenantStore {
  /** Items by table key. Records come in through the table model (a deep copy) and go out through structuredClone. */
  readonly #items = new Map<string, Item>();

  async ping(): Promise<void> {}

  async commit(change: StateChange): Promise<void> {
    const writes = writesOf(change);
    // DynamoDB refuses a transaction that touches one item twice.
    if (new Set(writes.map((w) => idOf(keyOfWrite(w)))).size < writes.length) {
      throw new Error("a state change may write each item only once");
    }
    for (const w of writes) {
      const reason = conflictOf(w);
      if (reason && !this.#holds(w)) throw new CommitConflict(reason);
    }
    for (const w of writes) this.#apply(w);
  }

  #holds(w: Write): boolean {
    const stored = this.#items.get(idOf(keyOfWrite(w)));
    if (w.type === "count") {
      const { below, notPausedAfter, zero, atLeast } = w.when ?? {};
      const pausedUntil = stored?.paused_until as string | undefined;
      return (
        (below ?? []).every(({ counter, limit }) => counterOf(stored, counter) < limit) &&
        (!atLeast || counterOf(stored, atLeast.counter) >= atLeast.limit) &&
        (notPausedAfter === undefined || pausedUntil === undefined || pausedUntil <= notPausedAfter) &&
        (!zero || counterOf(stored, zero) === 0)
      );
    }
    if (w.type === "append" || w.type === "set") return true;
    return w.expectVersion === undefined ? stored === undefined : stored?.version === w.expectVersion;
  }

  #apply(w: Write): void {
    if (w.type === "put" || w.type === "append") {
      this.#items.set(idOf(w.item), w.item);
      return;
    }
    const item: Item = { ...this.#items.get(idOf(w.key)), ...w.key };
    if (w.type === "set") {
      this.#items.set(idOf(w.key), { ...item, ...w.values });
      return;
    }
    for (const [counter, delta] of Object.entries(w.add) as [Counter, number][]) {
      item[counter] = counterOf(item, counter) + delta;
    }
    Object.assign(item, w.set);
    if (w.heldSince) {
      const held = new Set(heldSinceOf(item));
      if ("add" in w.heldSince) held.add(w.heldSince.add);
      else held.delete(w.heldSince.remove);
      // As DynamoDB drops an empty set, so does the fake.
      item[HELD_SINCE] = held.size > 0 ? held : undefined;
    }
    this.#items.set(idOf(w.key), item);
  }

  #get<T>(key: Key): T | undefined {
    const item = this.#items.get(idOf(key));
    return item && recordOf<T>(structuredClone(item));
  }

  /** The items of a listing in its order, after `start` when given: what a DynamoDB Query returns. */
  #query(listing: Listing, start?: Record<string, string>): Item[] {
    const { pkName, skName } = keyNamesOf(listing);
    const direction = listing.forward ? 1 : -1;
    const { skPrefix = "", skMin, skMax } = listing;
    const after = start?.[skName];
    return [...this.#items.values()]
      .filter((item) => {
        const sk = item[skName];
        return (
          item[pkName] === listing.pk &&
          typeof sk === "string" &&
          sk.startsWith(skPrefix) &&
          (skMin === undefined || compareKeys(sk, skMin) >= 0) &&
          (skMax === undefined || compareKeys(sk, skMax) <= 0) &&
          (after === undefined || compareKeys(sk, after) * direction > 0) &&
          listing.filters.every(({ path, value }) => valueAt(item, path) === value)
        );
      })
      .sort((a, b) => compareKeys(a[skName] as string, b[skName] as string) * direction);
  }

  #first<T>(listing: Listing, limit: number): T[] {
    return structuredClone(this.#query(listing).slice(0, limit)).map(recordOf<T>);
  }

  #page<T>(listings: Listing[], size: number, cursor?: string): Page<T> {
    const positions = decodePositions(cursor, listings);
    const fetched = listings.map((listing, i) => {
      const position = positions[i];
      if (position === "done") return [];
      return structuredClone(this.#query(listing, position ?? undefined).slice(0, size + 1));
    });
    const total = listings.reduce((n, listing) => n + this.#query(listing).length, 0);
    return mergedPageOf<T>(fetched, positions, size, total, listings);
  }

  async getTask(uuid: string): Promise<Task | undefined> {
    return this.#get<Task>(taskKey(uuid));
  }

  async listTasks(query: TaskQuery): Promise<Page<Task>> {
    return this.#page<Task>(taskListings(query), query.size, query.cursor);
  }

  async queuedCount(tenant: string): Promise<number> {
    return counterOf(this.#items.get(idOf(queuedCountKey(tenant))), "queued");
  }

  async readyTasks(pool: string, limit: number, after?: Task): Promise<Task[]> {
    const listing = readyListing(pool);
    const items = this.#query(listing, after && startAfter(taskItem(after), listing)).slice(0, limit);
    return structuredClone(items).map(recordOf<Task>);
  }

  async readyAhead(task: Task, max: number): Promise<number> {
    return Math.min(max, this.#query(readyAheadListing(task)).length);
  }

  async dueTasks(shard: number, before: string, limit: number, after?: Task): Promise<Task[]> {
    const listing = dueListing(shard, before);
    const items = this.#query(listing, after && startAfter(taskItem(after), listing)).slice(0, limit);
    return structuredClone(items).map(recordOf<Task>);
  }

  async keyWaitingTasks(key: string, limit: number): Promise<Task[]> {
    return this.#first<Task>(keyWaitingListing(key), limit);
  }

  async keyState(key: string): Promise<{ active: number; waiting: number }> {
    const item = this.#items.get(idOf(concurrencyKeyKey(key)));
    return { active: counterOf(item), waiting: counterOf(item, "waiting") };
  }

  async scopeState(scope: string): Promise<{ active: number }> {
    return { active: counterOf(this.#items.get(idOf(scopeKey(scope)))) };
  }

  async keyOpenTasks(key: string): Promise<{ open: number; exclusive: number }> {
    const item = this.#items.get(idOf(keyOpenTasksKey(key)));
    return { open: counterOf(item, "open"), exclusive: counterOf(item, "exclusive") };
  }

  async getRun(taskUuid: string, runId: string): Promise<Run | undefined> {
    return this.#get<Run>(runKey(taskUuid, runId));
  }

  async listRuns(query: RunQuery): Promise<Page<Run>> {
    return this.#page<Run>(runListings(query), query.size, query.cursor);
  }

  async poolState(pool: string): Promise<PoolState> {
    const item = this.#items.get(idOf(poolKey(pool)));
    return {
      active: counterOf(item),
      queued: counterOf(item, "queued"),
      pausedUntil: item?.paused_until as string | undefined,
      heldSince: heldSinceOf(item),
    };
  }

  async poolSamples(pool: string): Promise<PoolSamples> {
    return samplesOf(this.#items.get(idOf(poolSamplesKey(pool))));
  }

  async waitOutcomes(pool: string): Promise<WaitOutcome[]> {
    return waitOutcomesOf(this.#items.get(idOf(waitOutcomesKey(pool))));
  }

  async resumePool(pool: string): Promise<void> {
    const key = poolKey(pool);
    const item = this.#items.get(idOf(key));
    if (item) this.#items.set(idOf(key), { ...item, paused_until: undefined });
  }

  async pausePool(pool: string, until: string): Promise<void> {
    const key = poolKey(pool);
    const item = this.#items.get(idOf(key));
    const current = item?.paused_until as string | undefined;
    if (current === undefined || current < until)
      this.#items.set(idOf(key), { ...item, ...key, paused_until: until });
  }

  async liftLimitPause(pool: string): Promise<void> {
    const key = poolKey(pool);
    const item = this.#items.get(idOf(key));
    if (item?.paused_until !== undefined && item.paused_until !== PAUSED_INDEFINITELY)
      this.#items.set(idOf(key), { ...item, paused_until: undefined });
  }

  async fairState(
    pool: string,
    tenant: string,
    priority: number,
  ): Promise<{ round: number; queued: number }> {
    return {
      round: Number(this.#items.get(idOf(poolKey(pool)))?.[fairRoundAttribute(priority)] ?? 0),
      queued: Number(this.#items.get(idOf(queuedCountKey(tenant)))?.[queuedInPoolAttribute(pool)] ?? 0),
    };
  }

  async costSamples(pool: string): Promise<CostSample[]> {
    return costSamplesOf(this.#items.get(idOf(costSamplesKey(pool))));
  }

  async spend(scope: string, fromDay: string, toDay: string): Promise<SpendItem[]> {
    const pk = spendKey(scope, fromDay).pk;
    return [...this.#items.values()]
      .filter((item) => item.pk === pk && String(item.sk) >= fromDay && String(item.sk) <= `${toDay}~`)
      .sort((a, b) => (String(a.sk) < String(b.sk) ? -1 : 1))
      .map(spendItemOf);
  }

  async toolAccounts(): Promise<ToolAccount[]> {
    return [...this.#items.values()]
      .filter((item) => item.pk === TOOL_ACCOUNT_PARTITION)
      .map((item) => structuredClone(recordOf<ToolAccount>(item)));
  }

  async putToolAccount({ next, expectVersion }: RecordWrite<ToolAccount>): Promise<void> {
    const item = toolAccountItem(next);
    const stored = this.#items.get(idOf(item));
    if ((stored?.version as number | undefined) !== expectVersion) throw new CommitConflict("account");
    this.#items.set(idOf(item), item);
  }

  async pauseForLimit(pool: string, until: string): Promise<void> {
    const key = poolKey(pool);
    const item = this.#items.get(idOf(key));
    if (item?.paused_until !== PAUSED_INDEFINITELY)
      this.#items.set(idOf(key), { ...item, ...key, paused_until: until });
  }

  async getIdempotency(tenant: string, key: string): Promise<IdempotencyRecord | undefined> {
    return this.#get<IdempotencyRecord>(idempotencyKey(tenant, key));
  }

  async recordHeartbeat(part: HeartbeatPart, beat: Heartbeat): Promise<void> {
    this.#items.set(idOf(heartbeatKey(part)), { ...beat, ...heartbeatKey(part) });
  }

  async heartbeats(): Promise<Partial<Record<HeartbeatPart, Heartbeat>>> {
    const parts: HeartbeatPart[] = ["tick", "events-relay"];
    const found = parts.map((part) => [part, this.#get<Heartbeat>(heartbeatKey(part))] as const);
    return Object.fromEntries(found.filter(([, beat]) => beat !== undefined));
  }

  async appliedConfig(): Promise<AppliedConfig | undefined> {
    return appliedConfigOf(structuredClone(this.#items.get(idOf(appliedConfigKey))));
  }

  async applyConfig(config: AppliedConfig, expectVersion?: number): Promise<void> {
    const stored = this.#items.get(idOf(appliedConfigKey));
    if ((stored?.version as number | undefined) !== expectVersion) throw new CommitConflict("config");
    this.#items.set(idOf(appliedConfigKey), appliedConfigItem(config));
  }

  async putRevision(revision: TemplateRevision): Promise<void> {
    const item = templateItem(revision);
    const previous = templateKey(revision.tenant, revision.name, revision.revision - 1);
    if (this.#items.has(idOf(item)) || (revision.revision > 1 && !this.#items.has(idOf(previous)))) {
      throw new CommitConflict("template");
    }
    this.#items.set(idOf(item), item);
  }

  async getTemplate(tenant: string, name: string, revision?: number): Promise<TemplateRevision | undefined> {
    if (revision !== undefined) return this.#get<TemplateRevision>(templateKey(tenant, name, revision));
    return this.#first<TemplateRevision>(templateRevisionsListing(tenant, name), 1)[0];
  }

  async listTemplates(tenant: string): Promise<TemplateRevision[]> {
    return latestRevisions(this.#first<TemplateRevision>(templatesListing(tenant), Number.POSITIVE_INFINITY));
  }

  async createTenant(tenant: Tenant, key: ApiKeyRecord): Promise<void> {
    this.#create([tenantItem(tenant), apiKeyItem(key)]);
  }

  async putApiKey(key: ApiKeyRecord): Promise<void> {
    this.#create([apiKeyItem(key)]);
  }

  /** Stores items that must not exist yet: all of them, or none. */
  #create(items: (Item & Key)[]): void {
    if (items.some((item) => this.#items.has(idOf(item)))) throw alreadyExists();
    for (const item of items) this.#items.set(idOf(item), item);
  }

  async getTenant(id: string): Promise<Tenant | undefined> {
    return this.#get<Tenant>(tenantKey(id));
  }

  async setTenantSettings(
    id: string,
    settings: { budget?: Tenant["budget"] | null; weight?: number | null },
  ): Promise<boolean> {
    const key = idOf(tenantKey(id));
    const item = this.#items.get(key);
    if (!item) return false;
    const changed = Object.entries(settings).filter(([, value]) => value !== undefined);
    const values = Object.fromEntries(
      changed.map(([name, value]) => [name, value === null ? undefined : compact(value)]),
    );
    this.#items.set(key, { ...item, ...values });
    return true;
  }

  async listEvents(taskUuid: string, size: number, cursor?: string): Promise<Page<DomainEvent>> {
    const afterId = cursor === undefined ? undefined : decodeEventCursor(cursor);
    const items = structuredClone(
      this.#query(eventsListing(taskUuid, afterId)).slice(0, eventItemsFor(size)),
    );
    const total = this.#query(eventsListing(taskUuid)).reduce((n, item) => n + eventCountOf(item), 0);
    return eventsPageOf(items, size, total, afterId);
  }

  async reportWorker(report: WorkerReportRecord, registered: boolean): Promise<WorkerRecord | undefined> {
    const item = workerItem(report);
    const existing = this.#items.get(idOf(item));
    if (registered && existing?.registered_at === undefined) return undefined;
    this.#items.set(idOf(item), { ...existing, ...item });
    return this.#get<WorkerRecord>(item);
  }

  async registerWorker(worker: WorkerRecord, key: WorkerKeyRecord): Promise<void> {
    this.#create([workerItem(worker), workerKeyItem(key)]);
  }

  async getWorker(workerId: string): Promise<WorkerRecord | undefined> {
    return this.#get<WorkerRecord>(workerKey(workerId));
  }

  async drainWorker(workerId: string): Promise<WorkerRecord | undefined> {
    const item = this.#items.get(idOf(workerKey(workerId)));
    if (!item) return undefined;
    item.draining = true;
    return this.#get<WorkerRecord>(workerKey(workerId));
  }

  async removeWorker(worker: WorkerRecord): Promise<void> {
    this.#items.delete(idOf(workerKey(worker.worker_id)));
    if (worker.key_hash) this.#items.delete(idOf(apiKeyKey(worker.key_hash)));
  }

  async listWorkers(now: number): Promise<WorkerRecord[]> {
    const workers = await this.#first<WorkerRecord>(workersListing, Number.POSITIVE_INFINITY);
    return workers.filter((w) => w.expires_at === undefined || w.expires_at > now);
  }

  async createWorkflow({ def, nodes, edges }: WorkflowDefinition): Promise<void> {
    for (const item of workflowEditItems(def.workflow_id, { putNodes: nodes, putEdges: edges }).puts) {
      this.#items.set(idOf(item), item);
    }
    this.#create([workflowItem(def)]);
  }

  async getWorkflow(id: string): Promise<WorkflowDefinition | undefined> {
    return workflowOf(structuredClone(this.#query(workflowListing(id))));
  }

  async getWorkflowDef(id: string): Promise<WorkflowDef | undefined> {
    return this.#get<WorkflowDef>(workflowKey(id));
  }

  async editWorkflow(def: WorkflowDef, at: string, edit: WorkflowEdit): Promise<void> {
    const record = this.#items.get(idOf(workflowKey(def.workflow_id)));
    if (record?.version !== def.version) throw new CommitConflict("workflow");
    Object.assign(record, { version: def.version + 1, update_time: at });
    const { puts, deletes } = workflowEditItems(def.workflow_id, edit);
    for (const item of puts) this.#items.set(idOf(item), item);
    for (const key of deletes) this.#items.delete(idOf(key));
  }

  async listWorkflows(tenant: string): Promise<WorkflowDef[]> {
    return this.#first<WorkflowDef>(workflowsListing(tenant), Number.POSITIVE_INFINITY);
  }

  async createWorkflowRun(
    run: WorkflowRun,
    nodes: NodeRun[],
    edges: RunEdge[],
    started: WorkflowStarted,
  ): Promise<void> {
    for (const item of [...nodes.map(nodeRunItem), ...edges.map((edge) => runEdgeItem(run.run_id, edge))])
      this.#items.set(idOf(item), item);
    this.#create([workflowRunItem(run), workflowRunEventItem(started)]);
  }

  async getWorkflowRun(
    runId: string,
  ): Promise<{ run: WorkflowRun; nodes: NodeRun[]; edges: RunEdge[] } | undefined> {
    return workflowRunOf(structuredClone(this.#query(workflowRunListing(runId))));
  }

  async getWorkflowRunRecord(runId: string): Promise<WorkflowRun | undefined> {
    return this.#get<WorkflowRun>(workflowRunKey(runId));
  }

  async getNodeRun(runId: string, name: string): Promise<NodeRun | undefined> {
    return this.#get<NodeRun>(nodeRunKey(runId, name));
  }

  async listWorkflowRuns(workflowId: string): Promise<WorkflowRun[]> {
    return this.#first<WorkflowRun>(workflowRunsListing(workflowId), Number.POSITIVE_INFINITY);
  }

  async moveNodeRun(
    runId: string,
    name: string,
    from: readonly NodeStatus[],
    set: Partial<NodeRun> & { status: NodeStatus },
    ended?: { failed: boolean },
  ): Promise<boolean> {
    const node = this.#items.get(idOf(nodeRunKey(runId, name)));
    if (!node || !from.includes(node.status as NodeStatus)) return false;
    Object.assign(node, compact(set));
    const run = this.#items.get(idOf(workflowRunKey(runId)));
    if (ended && run) {
      run.nodes_done = Number(run.nodes_done ?? 0) + 1;
      run.nodes_failed = Number(run.nodes_failed ?? 0) + (ended.failed ? 1 : 0);
    }
    return true;
  }

  async listRunEdges(runId: string, source: string): Promise<RunEdge[]> {
    return this.#first<RunEdge>(runEdgesListing(runId, source), Number.POSITIVE_INFINITY);
  }

  async arriveAtNodeRun(
    runId: string,
    edge: RunEdge,
    outcome: NodeStatus,
    blocked?: string,
  ): Promise<NodeRun> {
    const stored = this.#items.get(idOf(runEdgeKey(runId, edge.source, edge.target)));
    const node = this.#items.get(idOf(nodeRunKey(runId, edge.target)));
    if (!stored || !node) throw new Error(`no edge ${edge.source} → ${edge.target}`);
    if (stored.arrived === undefined) {
      stored.arrived = outcome;
      node.arrived_count = Number(node.arrived_count ?? 0) + 1;
      if (blocked) node.blocked ??= blocked;
    }
    return this.#get<NodeRun>(nodeRunKey(runId, edge.target)) as NodeRun;
  }

  async endWorkflowRun(runId: string, status: WorkflowRunStatus, at: string): Promise<boolean> {
    const run = this.#items.get(idOf(workflowRunKey(runId)));
    if (run?.status !== "running") return false;
    Object.assign(run, { status, end_time: at });
    return true;
  }

  async appendRunMessage(
    runId: string,
    key: string,
    message: Omit<RunMessage, "seq">,
  ): Promise<{ seq?: number; watchers: number }> {
    const run = this.#items.get(idOf(workflowRunKey(runId)));
    if (!run) throw new Error(`no workflow run ${runId}`);
    const watchers = Number(run.watchers ?? 0);
    if (this.#items.has(idOf(runMessageMarkKey(runId, key)))) return { watchers };
    const seq = Number(run.seq ?? 0) + 1;
    run.seq = seq;
    this.#create([
      { ...compact({ ...message, seq }), ...runMessageKey(runId, seq) },
      { seq, ...runMessageMarkKey(runId, key) },
    ]);
    return { seq, watchers };
  }

  async listRunMessages(runId: string, after: number): Promise<RunMessage[]> {
    return this.#first<RunMessage>(runMessagesListing(runId, after), Number.POSITIVE_INFINITY);
  }

  async listRunMessageKeys(runId: string): Promise<Set<string>> {
    const items = this.#query(runMessageKeysListing(runId));
    return new Set(items.map((item) => String(item.sk).slice(WORKFLOW_RUN_PARTITION.messageKeys.length)));
  }

  async addStreamConnection(runId: string, connection: StreamConnection): Promise<void> {
    const run = this.#items.get(idOf(workflowRunKey(runId)));
    if (!run) throw alreadyExists();
    this.#create([streamConnectionItem(runId, connection)]);
    run.watchers = Number(run.watchers ?? 0) + 1;
  }

  async listStreamConnections(runId: string, now: number): Promise<StreamConnection[]> {
    const connections = this.#first<StreamConnection>(
      streamConnectionsListing(runId),
      Number.POSITIVE_INFINITY,
    );
    return connections.filter((c) => c.expires_at > now);
  }

  async moveStreamCursor(runId: string, connectionId: string, from: number, to: number): Promise<boolean> {
    const connection = this.#items.get(idOf(streamConnectionKey(runId, connectionId)));
    if (connection?.cursor !== from) return false;
    connection.cursor = to;
    return true;
  }

  async removeStreamConnection(runId: string, connectionId: string): Promise<void> {
    if (!this.#items.delete(idOf(streamConnectionKey(runId, connectionId)))) return;
    const run = this.#items.get(idOf(workflowRunKey(runId)));
    if (run) run.watchers = Number(run.watchers ?? 0) - 1;
  }

  async listTenants(): Promise<Tenant[]> {
    return this.#first<Tenant>(tenantsListing, Number.POSITIVE_INFINITY);
  }

  async findApiKey(keyHash: string): Promise<ApiKeyRecord | WorkerKeyRecord | undefined> {
    return this.#get<ApiKeyRecord | WorkerKeyRecord>(apiKeyKey(keyHash));
  }

  async listApiKeys(tenantId: string): Promise<ApiKeyRecord[]> {
    return this.#first<ApiKeyRecord>(apiKeysListing(tenantId), Number.POSITIVE_INFINITY);
  }

  async revokeApiKey(tenantId: string, keyId: string, at: string): Promise<boolean> {
    const key = (await this.listApiKeys(tenantId)).find((k) => k.key_id === keyId);
    const item = key && this.#items.get(idOf(apiKeyKey(key.key_hash)));
    if (!item) return false;
    item.revoked_time ??= at;
    return true;
  }

  async takeRateTokens(
    scope: string,
    windowStart: string,
    limits: RateLimits,
    expiresAt: number,
  ): Promise<RateCounter | undefined> {
    const key = rateKey(scope, windowStart);
    const item = this.#items.get(idOf(key)) ?? { ...key };
    const counters = Object.entries(limits) as [RateCounter, number][];
    const count = (counter: RateCounter) => (item[counter] as number | undefined) ?? 0;
    const full = counters.find(([counter, limit]) => count(counter) >= limit);
    if (full) return full[0];
    for (const [counter] of counters) item[counter] = count(counter) + 1;
    this.#items.set(idOf(key), { ...item, expires_at: expiresAt });
    return undefined;
  }
}
