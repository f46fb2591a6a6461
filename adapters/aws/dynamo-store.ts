/** TaskStore and TenantStore on the single DynamoDB table (the model: adapters/table/). */
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import {
  BatchWriteCommand,
  type BatchWriteCommandInput,
  type BatchWriteCommandOutput,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  paginateQuery,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import type { DomainEvent } from "../../core/events.ts";
import type { AppliedConfig } from "../../core/live-config.ts";
import { TABLE } from "../../core/names.ts";
import type {
  CommitConflictReason,
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
  HEARTBEAT_PARTITION,
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
import { alreadyExists, conflictOf, type Write, writesOf } from "../table/writes.ts";

type TransactItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/** The index of the write whose condition failed: the only write, or the one a transaction names. */
function failedWrite(err: unknown): number | undefined {
  if (err instanceof ConditionalCheckFailedException) return 0;
  if (!(err instanceof TransactionCanceledException)) return undefined;
  const index =
    err.CancellationReasons?.findIndex((reason) => reason.Code === "ConditionalCheckFailed") ?? -1;
  return index < 0 ? undefined : index;
}

/** Tries of a transaction that DynamoDB keeps cancelling because other transactions hold its items. */
const TRANSACTION_CONFLICT_TRIES = 5;
/** Tries of a run's message while other messages of the run take its number first. */
const APPEND_TRIES = 20;

/**
 * Cancelled only because another transaction was writing one of its items (hot counters such as a pool's
 * see this): nothing was checked or written, so the same transaction may simply be sent again.
 */
function isTimingConflict(err: unknown): boolean {
  if (!(err instanceof TransactionCanceledException)) return false;
  const codes = (err.CancellationReasons ?? []).map((reason) => reason.Code);
  return codes.includes("TransactionConflict") && !codes.includes("ConditionalCheckFailed");
}

/** A counter write as an UpdateItem: `ADD` each counter (a missing one counts from 0), under its conditions. */
function countExpression(w: Extract<Write, { type: "count" }>) {
  // Placeholders by position: attribute names such as `queued@claude-main` are no valid placeholders.
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const nameOf = (attribute: string) => {
    const found = Object.entries(names).find(([, name]) => name === attribute)?.[0];
    if (found) return found;
    const placeholder = `#a${Object.keys(names).length}`;
    names[placeholder] = attribute;
    return placeholder;
  };
  const adds = Object.entries(w.add).map(([counter, delta], i) => {
    values[`:add${i}`] = delta;
    return `${nameOf(counter)} :add${i}`;
  });
  const sets = Object.entries(w.set ?? {}).map(([attribute, value], i) => {
    values[`:set${i}`] = value;
    return `${nameOf(attribute)} = :set${i}`;
  });
  const conditions: string[] = [];
  const { below, notPausedAfter, zero, atLeast } = w.when ?? {};
  for (const [i, { counter, limit }] of (below ?? []).entries()) {
    values[`:limit${i}`] = limit;
    conditions.push(`(attribute_not_exists(${nameOf(counter)}) OR ${nameOf(counter)} < :limit${i})`);
  }
  if (notPausedAfter !== undefined) {
    names["#paused"] = "paused_until";
    values[":now"] = notPausedAfter;
    conditions.push("(attribute_not_exists(#paused) OR #paused <= :now)");
  }
  if (zero) {
    values[":zero"] = 0;
    conditions.push(`(attribute_not_exists(${nameOf(zero)}) OR ${nameOf(zero)} = :zero)`);
  }
  if (atLeast) {
    values[":atLeast"] = atLeast.limit;
    conditions.push(`${nameOf(atLeast.counter)} >= :atLeast`);
  }
  // The held slots' times: a number set, added to with ADD and taken from with DELETE.
  const held = w.heldSince;
  if (held && "add" in held) {
    names["#held"] = HELD_SINCE;
    values[":held"] = new Set([held.add]);
    adds.push("#held :held");
  }
  const taken = held && "remove" in held ? ` DELETE #held :held` : "";
  if (held && "remove" in held) {
    names["#held"] = HELD_SINCE;
    values[":held"] = new Set([held.remove]);
  }
  return {
    UpdateExpression: `ADD ${adds.join(", ")}${taken}${sets.length > 0 ? ` SET ${sets.join(", ")}` : ""}`,
    ...(conditions.length > 0 && { ConditionExpression: conditions.join(" AND ") }),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

export class DynamoStore implements TaskStore, TenantStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** A consistent read of a key that never exists: proves the table answers. */
  async ping(): Promise<void> {
    await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: "PING", sk: "PING" } }));
  }

  async commit(change: StateChange): Promise<void> {
    const writes = writesOf(change);
    try {
      await this.#write(writes.map((w) => this.#transactItem(w)));
    } catch (err) {
      const failed = writes[failedWrite(err) ?? -1];
      const reason = failed && conflictOf(failed);
      if (reason) throw new CommitConflict(reason);
      throw err;
    }
  }

  #transactItem(w: Write): TransactItem {
    const TableName = this.tableName;
    switch (w.type) {
      case "put":
        return {
          Put:
            w.expectVersion === undefined
              ? { TableName, Item: w.item, ConditionExpression: "attribute_not_exists(pk)" }
              : {
                  TableName,
                  Item: w.item,
                  ConditionExpression: "#version = :expected",
                  ExpressionAttributeNames: { "#version": "version" },
                  ExpressionAttributeValues: { ":expected": w.expectVersion },
                },
        };
      case "count":
        return { Update: { TableName, Key: w.key, ...countExpression(w) } };
      case "append":
        return { Put: { TableName, Item: w.item } };
      case "set": {
        const names = Object.keys(w.values);
        return {
          Update: {
            TableName,
            Key: w.key,
            UpdateExpression: `SET ${names.map((_, i) => `#s${i} = :s${i}`).join(", ")}`,
            ExpressionAttributeNames: Object.fromEntries(names.map((name, i) => [`#s${i}`, name])),
            ExpressionAttributeValues: Object.fromEntries(names.map((name, i) => [`:s${i}`, w.values[name]])),
          },
        };
      }
    }
  }

  /** One item: a plain conditional write (cheaper than a transaction). Several: one transaction. */
  async #write(items: TransactItem[]): Promise<void> {
    const [only] = items;
    if (items.length > 1) await this.#transact(items);
    else if (only?.Put) await this.doc.send(new PutCommand(only.Put));
    else if (only?.Update) await this.doc.send(new UpdateCommand(only.Update));
  }

  /** One transaction, sent again (after a short random wait) while it only loses timing conflicts. */
  async #transact(items: TransactItem[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.doc.send(new TransactWriteCommand({ TransactItems: items }));
        return;
      } catch (err) {
        if (!isTimingConflict(err) || attempt >= TRANSACTION_CONFLICT_TRIES) throw err;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * 2 ** attempt));
      }
    }
  }

  async #get<T>(key: Key): Promise<T | undefined> {
    const { Item } = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    return Item && recordOf<T>(Item);
  }

  #queryInput(listing: Listing): QueryCommandInput {
    const { pkName, skName } = keyNamesOf(listing);
    const names: Record<string, string> = { "#pk": pkName };
    const values: Record<string, unknown> = { ":pk": listing.pk };
    const conditions = ["#pk = :pk"];
    const { skPrefix, skMin, skMax } = listing;
    if (skMin !== undefined || skPrefix !== undefined || skMax !== undefined) names["#sk"] = skName;
    if (skMin !== undefined) {
      Object.assign(values, { ":min": skMin, ":max": skMax });
      conditions.push("#sk BETWEEN :min AND :max");
    } else if (skPrefix !== undefined) {
      values[":sk"] = skPrefix;
      conditions.push("begins_with(#sk, :sk)");
    } else if (skMax !== undefined) {
      values[":sk"] = skMax;
      conditions.push("#sk <= :sk");
    }
    const filters = listing.filters.map(({ path, value }, i) => {
      values[`:f${i}`] = value;
      const attribute = path.map((name, j) => {
        names[`#f${i}_${j}`] = name;
        return `#f${i}_${j}`;
      });
      return `${attribute.join(".")} = :f${i}`;
    });
    return {
      TableName: this.tableName,
      IndexName: listing.index?.name,
      KeyConditionExpression: conditions.join(" AND "),
      FilterExpression: filters.length > 0 ? filters.join(" AND ") : undefined,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ScanIndexForward: listing.forward,
    };
  }

  /** Up to `max` items of a listing after `start`. Limit applies before filters, so read on until enough. */
  async #collect(listing: Listing, max: number, start?: Record<string, string>): Promise<Item[]> {
    const items: Item[] = [];
    const pageSize = Number.isFinite(max) ? max : undefined;
    const input = { ...this.#queryInput(listing), ExclusiveStartKey: start };
    for await (const page of paginateQuery({ client: this.doc, pageSize }, input)) {
      items.push(...(page.Items ?? []));
      if (items.length >= max) break;
    }
    return items.slice(0, max);
  }

  /** The items of a listing, counted; at most `max` are read. */
  async #count(listing: Listing, max = Number.POSITIVE_INFINITY): Promise<number> {
    let total = 0;
    const input: QueryCommandInput = {
      ...this.#queryInput(listing),
      Select: "COUNT",
      ...(Number.isFinite(max) && { Limit: max }),
    };
    for await (const page of paginateQuery({ client: this.doc }, input)) {
      total += page.Count ?? 0;
      if (total >= max) return max;
    }
    return total;
  }

  async #first<T>(listing: Listing, limit: number): Promise<T[]> {
    return (await this.#collect(listing, limit)).map(recordOf<T>);
  }

  /** A page of listings read at once from the cursor's positions, merged (see mergedPageOf). */
  async #page<T>(listings: Listing[], size: number, cursor?: string): Promise<Page<T>> {
    const positions = decodePositions(cursor, listings);
    const [fetched, counts] = await Promise.all([
      Promise.all(
        listings.map((listing, i) => {
          const position = positions[i];
          if (position === "done") return [];
          return this.#collect(listing, size + 1, position ?? undefined);
        }),
      ),
      Promise.all(listings.map((listing) => this.#count(listing))),
    ]);
    const total = counts.reduce((a, b) => a + b, 0);
    return mergedPageOf<T>(fetched, positions, size, total, listings);
  }

  getTask(uuid: string): Promise<Task | undefined> {
    return this.#get<Task>(taskKey(uuid));
  }

  listTasks(query: TaskQuery): Promise<Page<Task>> {
    return this.#page<Task>(taskListings(query), query.size, query.cursor);
  }

  async queuedCount(tenant: string): Promise<number> {
    return (await this.#get<{ queued?: number }>(queuedCountKey(tenant)))?.queued ?? 0;
  }

  async readyTasks(pool: string, limit: number, after?: Task): Promise<Task[]> {
    const listing = readyListing(pool);
    const items = await this.#collect(listing, limit, after && startAfter(taskItem(after), listing));
    return items.map(recordOf<Task>);
  }

  async readyAhead(task: Task, max: number): Promise<number> {
    return this.#count(readyAheadListing(task), max);
  }

  async dueTasks(shard: number, before: string, limit: number, after?: Task): Promise<Task[]> {
    const listing = dueListing(shard, before);
    const items = await this.#collect(listing, limit, after && startAfter(taskItem(after), listing));
    return items.map(recordOf<Task>);
  }

  async keyWaitingTasks(key: string, limit: number): Promise<Task[]> {
    return (await this.#collect(keyWaitingListing(key), limit)).map(recordOf<Task>);
  }

  async keyState(key: string): Promise<{ active: number; waiting: number }> {
    const item = await this.#get<{ active?: number; waiting?: number }>(concurrencyKeyKey(key));
    return { active: item?.active ?? 0, waiting: item?.waiting ?? 0 };
  }

  async scopeState(scope: string): Promise<{ active: number }> {
    return { active: (await this.#get<{ active?: number }>(scopeKey(scope)))?.active ?? 0 };
  }

  async keyOpenTasks(key: string): Promise<{ open: number; exclusive: number }> {
    const item = await this.#get<{ open?: number; exclusive?: number }>(keyOpenTasksKey(key));
    return { open: item?.open ?? 0, exclusive: item?.exclusive ?? 0 };
  }

  getRun(taskUuid: string, runId: string): Promise<Run | undefined> {
    return this.#get<Run>(runKey(taskUuid, runId));
  }

  listRuns(query: RunQuery): Promise<Page<Run>> {
    return this.#page<Run>(runListings(query), query.size, query.cursor);
  }

  async poolState(pool: string): Promise<PoolState> {
    const item = await this.#get<{ active?: number; queued?: number; paused_until?: string }>(poolKey(pool));
    return {
      active: item?.active ?? 0,
      queued: item?.queued ?? 0,
      pausedUntil: item?.paused_until,
      heldSince: heldSinceOf(item),
    };
  }

  async poolSamples(pool: string): Promise<PoolSamples> {
    return samplesOf(await this.#get<Record<string, unknown>>(poolSamplesKey(pool)));
  }

  async waitOutcomes(pool: string): Promise<WaitOutcome[]> {
    return waitOutcomesOf(await this.#get<Record<string, unknown>>(waitOutcomesKey(pool)));
  }

  async resumePool(pool: string): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: poolKey(pool),
        UpdateExpression: "REMOVE paused_until",
      }),
    );
  }

  pausePool(pool: string, until: string): Promise<void> {
    return this.#setPause(pool, until, "paused_until < :until", {});
  }

  async liftLimitPause(pool: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: poolKey(pool),
          UpdateExpression: "REMOVE paused_until",
          ConditionExpression: "attribute_exists(paused_until) AND paused_until <> :indefinitely",
          ExpressionAttributeValues: { ":indefinitely": PAUSED_INDEFINITELY },
        }),
      );
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  }

  async fairState(
    pool: string,
    tenant: string,
    priority: number,
  ): Promise<{ round: number; queued: number }> {
    const [poolItem, tenantItem] = await Promise.all([
      this.#get<Record<string, unknown>>(poolKey(pool)),
      this.#get<Record<string, unknown>>(queuedCountKey(tenant)),
    ]);
    return {
      round: Number(poolItem?.[fairRoundAttribute(priority)] ?? 0),
      queued: Number(tenantItem?.[queuedInPoolAttribute(pool)] ?? 0),
    };
  }

  async costSamples(pool: string): Promise<CostSample[]> {
    return costSamplesOf(await this.#get<Record<string, unknown>>(costSamplesKey(pool)));
  }

  async spend(scope: string, fromDay: string, toDay: string): Promise<SpendItem[]> {
    const items: Item[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
          ExpressionAttributeValues: {
            ":pk": spendKey(scope, fromDay).pk,
            ":from": fromDay,
            ":to": `${toDay}~`,
          },
          ConsistentRead: true,
          ExclusiveStartKey,
        }),
      );
      items.push(...(page.Items ?? []));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return items.map(spendItemOf);
  }

  async toolAccounts(): Promise<ToolAccount[]> {
    return (await this.#partition(TOOL_ACCOUNT_PARTITION)).map((item) => recordOf<ToolAccount>(item));
  }

  putToolAccount({ next, expectVersion }: RecordWrite<ToolAccount>): Promise<void> {
    return this.#putOnVersion(toolAccountItem(next), expectVersion, "account");
  }

  pauseForLimit(pool: string, until: string): Promise<void> {
    return this.#setPause(pool, until, "paused_until <> :indefinitely", {
      ":indefinitely": PAUSED_INDEFINITELY,
    });
  }

  /** Sets the pool's pause to `until` if it has none or `condition` holds; otherwise leaves it. */
  async #setPause(pool: string, until: string, condition: string, values: Record<string, string>) {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: poolKey(pool),
          UpdateExpression: "SET paused_until = :until",
          ConditionExpression: `attribute_not_exists(paused_until) OR ${condition}`,
          ExpressionAttributeValues: { ":until": until, ...values },
        }),
      );
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  }

  getIdempotency(tenant: string, key: string): Promise<IdempotencyRecord | undefined> {
    return this.#get<IdempotencyRecord>(idempotencyKey(tenant, key));
  }

  createTenant(tenant: Tenant, key: ApiKeyRecord): Promise<void> {
    return this.#create([tenantItem(tenant), apiKeyItem(key)]);
  }

  async listEvents(taskUuid: string, size: number, cursor?: string): Promise<Page<DomainEvent>> {
    const afterId = cursor === undefined ? undefined : decodeEventCursor(cursor);
    const [items, total] = await Promise.all([
      this.#collect(eventsListing(taskUuid, afterId), eventItemsFor(size)),
      this.#countEvents(taskUuid),
    ]);
    return eventsPageOf(items, size, total, afterId);
  }

  /** The events of a task's log: the sum of its items' counts. */
  async #countEvents(taskUuid: string): Promise<number> {
    const input: QueryCommandInput = {
      ...this.#queryInput(eventsListing(taskUuid)),
      ProjectionExpression: "#count",
    };
    input.ExpressionAttributeNames = { ...input.ExpressionAttributeNames, "#count": "count" };
    let total = 0;
    for await (const page of paginateQuery({ client: this.doc }, input)) {
      for (const item of page.Items ?? []) total += eventCountOf(item);
    }
    return total;
  }

  async reportWorker(report: WorkerReportRecord, registered: boolean): Promise<WorkerRecord | undefined> {
    const { pk, sk, ...fields } = workerItem(report);
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets = Object.entries(fields).map(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:f${i}`] = value;
      return `#f${i} = :f${i}`;
    });
    try {
      const { Attributes } = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk, sk },
          UpdateExpression: `SET ${sets.join(", ")}`,
          // A removed worker's report must not bring its record back.
          ...(registered && { ConditionExpression: "attribute_exists(registered_at)" }),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: "ALL_NEW",
        }),
      );
      return Attributes && recordOf<WorkerRecord>(Attributes);
    } catch (err) {
      if (registered && err instanceof ConditionalCheckFailedException) return undefined;
      throw err;
    }
  }

  registerWorker(worker: WorkerRecord, key: WorkerKeyRecord): Promise<void> {
    return this.#create([workerItem(worker), workerKeyItem(key)]);
  }

  getWorker(workerId: string): Promise<WorkerRecord | undefined> {
    return this.#get<WorkerRecord>(workerKey(workerId));
  }

  async drainWorker(workerId: string): Promise<WorkerRecord | undefined> {
    try {
      const { Attributes } = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: workerKey(workerId),
          UpdateExpression: "SET draining = :yes",
          ConditionExpression: "attribute_exists(pk)",
          ExpressionAttributeValues: { ":yes": true },
          ReturnValues: "ALL_NEW",
        }),
      );
      return Attributes && recordOf<WorkerRecord>(Attributes);
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return undefined;
      throw err;
    }
  }

  async removeWorker(worker: WorkerRecord): Promise<void> {
    const TableName = this.tableName;
    const keys = [workerKey(worker.worker_id), ...(worker.key_hash ? [apiKeyKey(worker.key_hash)] : [])];
    if (keys.length === 1) await this.doc.send(new DeleteCommand({ TableName, Key: keys[0] }));
    else await this.#transact(keys.map((Key) => ({ Delete: { TableName, Key } })));
  }

  async listWorkers(now: number): Promise<WorkerRecord[]> {
    const workers = await this.#first<WorkerRecord>(workersListing, Number.POSITIVE_INFINITY);
    return workers.filter((w) => w.expires_at === undefined || w.expires_at > now);
  }

  putApiKey(key: ApiKeyRecord): Promise<void> {
    return this.#create([apiKeyItem(key)]);
  }

  /** Puts items that must not exist yet: all of them, or none and a ConflictError. */
  async #create(items: Item[]): Promise<void> {
    const TableName = this.tableName;
    const puts = items.map((Item) => ({
      Put: { TableName, Item, ConditionExpression: "attribute_not_exists(pk)" },
    }));
    try {
      await this.#write(puts);
    } catch (err) {
      throw failedWrite(err) === undefined ? err : alreadyExists();
    }
  }

  async recordHeartbeat(part: HeartbeatPart, beat: Heartbeat): Promise<void> {
    await this.doc.send(
      new PutCommand({ TableName: this.tableName, Item: { ...beat, ...heartbeatKey(part) } }),
    );
  }

  async heartbeats(): Promise<Partial<Record<HeartbeatPart, Heartbeat>>> {
    const items = await this.#partition(HEARTBEAT_PARTITION);
    return Object.fromEntries(items.map((item) => [item.sk, recordOf<Heartbeat>(item)]));
  }

  /** The items of a small partition (one page), read consistently. */
  async #partition(pk: string): Promise<Item[]> {
    const { Items = [] } = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": pk },
        ConsistentRead: true,
      }),
    );
    return Items;
  }

  async appliedConfig(): Promise<AppliedConfig | undefined> {
    return appliedConfigOf(await this.#get<Item>(appliedConfigKey));
  }

  applyConfig(config: AppliedConfig, expectVersion?: number): Promise<void> {
    return this.#putOnVersion(appliedConfigItem(config), expectVersion, "config");
  }

  /** Puts a versioned item if the stored one's version is `expectVersion` (absent: none may be stored). */
  async #putOnVersion(Item: Item, expectVersion: number | undefined, conflict: CommitConflictReason) {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item,
          ...(expectVersion === undefined
            ? { ConditionExpression: "attribute_not_exists(pk)" }
            : {
                ConditionExpression: "version = :expected",
                ExpressionAttributeValues: { ":expected": expectVersion },
              }),
        }),
      );
    } catch (err) {
      throw failedWrite(err) === undefined ? err : new CommitConflict(conflict);
    }
  }

  async createWorkflow({ def, nodes, edges }: WorkflowDefinition): Promise<void> {
    const { puts } = workflowEditItems(def.workflow_id, { putNodes: nodes, putEdges: edges });
    await this.#batchWrite(puts.map((Item) => ({ PutRequest: { Item } })));
    await this.#create([workflowItem(def)]);
  }

  async getWorkflow(id: string): Promise<WorkflowDefinition | undefined> {
    return workflowOf(await this.#collect(workflowListing(id), Number.POSITIVE_INFINITY));
  }

  getWorkflowDef(id: string): Promise<WorkflowDef | undefined> {
    return this.#get<WorkflowDef>(workflowKey(id));
  }

  async editWorkflow(def: WorkflowDef, at: string, edit: WorkflowEdit): Promise<void> {
    const TableName = this.tableName;
    const { puts, deletes } = workflowEditItems(def.workflow_id, edit);
    const bump: TransactItem = {
      Update: {
        TableName,
        Key: workflowKey(def.workflow_id),
        UpdateExpression: "SET version = :next, update_time = :at",
        ConditionExpression: "version = :expected",
        ExpressionAttributeValues: { ":next": def.version + 1, ":expected": def.version, ":at": at },
      },
    };
    const writes: TransactItem[] = [
      ...puts.map((Item) => ({ Put: { TableName, Item } })),
      ...deletes.map((Key) => ({ Delete: { TableName, Key } })),
    ];
    // A transaction holds 100 items. Past that (a node with many edges deleted), the edges go after it:
    // until they are gone, an edge whose node is gone is no edge (workflowOf).
    const [now, after] = writes.length < 100 ? [writes, []] : [writes.slice(0, 1), writes.slice(1)];
    try {
      await this.#transact([bump, ...now]);
    } catch (err) {
      throw failedWrite(err) === undefined ? err : new CommitConflict("workflow");
    }
    await this.#batchWrite(
      after.map((w) =>
        w.Delete ? { DeleteRequest: { Key: w.Delete.Key } } : { PutRequest: { Item: w.Put?.Item } },
      ),
    );
  }

  listWorkflows(tenant: string): Promise<WorkflowDef[]> {
    return this.#first<WorkflowDef>(workflowsListing(tenant), Number.POSITIVE_INFINITY);
  }

  async createWorkflowRun(
    run: WorkflowRun,
    nodes: NodeRun[],
    edges: RunEdge[],
    started: WorkflowStarted,
  ): Promise<void> {
    await this.#batchWrite([
      ...nodes.map((node) => ({ PutRequest: { Item: nodeRunItem(node) } })),
      ...edges.map((edge) => ({ PutRequest: { Item: runEdgeItem(run.run_id, edge) } })),
    ]);
    await this.#create([workflowRunItem(run), workflowRunEventItem(started)]);
  }

  async getWorkflowRun(
    runId: string,
  ): Promise<{ run: WorkflowRun; nodes: NodeRun[]; edges: RunEdge[] } | undefined> {
    return workflowRunOf(await this.#collect(workflowRunListing(runId), Number.POSITIVE_INFINITY));
  }

  getWorkflowRunRecord(runId: string): Promise<WorkflowRun | undefined> {
    return this.#get<WorkflowRun>(workflowRunKey(runId));
  }

  getNodeRun(runId: string, name: string): Promise<NodeRun | undefined> {
    return this.#get<NodeRun>(nodeRunKey(runId, name));
  }

  listWorkflowRuns(workflowId: string): Promise<WorkflowRun[]> {
    return this.#first<WorkflowRun>(workflowRunsListing(workflowId), Number.POSITIVE_INFINITY);
  }

  async moveNodeRun(
    runId: string,
    name: string,
    from: readonly NodeStatus[],
    set: Partial<NodeRun> & { status: NodeStatus },
    ended?: { failed: boolean },
  ): Promise<boolean> {
    const TableName = this.tableName;
    const fields = Object.entries(compact(set));
    const names: Record<string, string> = { "#status": "status" };
    const values: Record<string, unknown> = {};
    const sets = fields.map(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:f${i}`] = value;
      return `#f${i} = :f${i}`;
    });
    from.forEach((status, i) => {
      values[`:from${i}`] = status;
    });
    const move: TransactItem = {
      Update: {
        TableName,
        Key: nodeRunKey(runId, name),
        UpdateExpression: `SET ${sets.join(", ")}`,
        ConditionExpression: `#status IN (${from.map((_, i) => `:from${i}`).join(", ")})`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    };
    const count: TransactItem[] = ended
      ? [
          {
            Update: {
              TableName,
              Key: workflowRunKey(runId),
              UpdateExpression: "ADD nodes_done :one, nodes_failed :failed",
              ExpressionAttributeValues: { ":one": 1, ":failed": ended.failed ? 1 : 0 },
            },
          },
        ]
      : [];
    try {
      await this.#write([move, ...count]);
      return true;
    } catch (err) {
      if (failedWrite(err) === 0) return false;
      throw err;
    }
  }

  listRunEdges(runId: string, source: string): Promise<RunEdge[]> {
    return this.#first<RunEdge>(runEdgesListing(runId, source), Number.POSITIVE_INFINITY);
  }

  async arriveAtNodeRun(
    runId: string,
    edge: RunEdge,
    outcome: NodeStatus,
    blocked?: string,
  ): Promise<NodeRun> {
    const TableName = this.tableName;
    const target = nodeRunKey(runId, edge.target);
    try {
      // Two small items, whatever the fan-in: the edge (once) and the target's count.
      await this.#transact([
        {
          Update: {
            TableName,
            Key: runEdgeKey(runId, edge.source, edge.target),
            UpdateExpression: "SET arrived = :outcome",
            ConditionExpression: "attribute_exists(pk) AND attribute_not_exists(arrived)",
            ExpressionAttributeValues: { ":outcome": outcome },
          },
        },
        {
          Update: {
            TableName,
            Key: target,
            UpdateExpression: `ADD arrived_count :one${blocked ? " SET blocked = if_not_exists(blocked, :blocked)" : ""}`,
            ConditionExpression: "attribute_exists(pk)",
            ExpressionAttributeValues: { ":one": 1, ...(blocked && { ":blocked": blocked }) },
          },
        },
      ]);
    } catch (err) {
      // Arrived before (an event delivered again): the node is as that arrival left it.
      if (failedWrite(err) !== 0) throw err;
    }
    const node = await this.#get<NodeRun>(target);
    if (!node) throw new Error(`no node run ${edge.target}`);
    return node;
  }

  async endWorkflowRun(runId: string, status: WorkflowRunStatus, at: string): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: workflowRunKey(runId),
          UpdateExpression: "SET #status = :status, end_time = :at",
          ConditionExpression: "#status = :running",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":status": status, ":at": at, ":running": "running" },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  async appendRunMessage(
    runId: string,
    key: string,
    message: Omit<RunMessage, "seq">,
  ): Promise<{ seq?: number; watchers: number }> {
    const TableName = this.tableName;
    for (let attempt = 1; ; attempt++) {
      const [marked, run] = await Promise.all([
        this.#get(runMessageMarkKey(runId, key)),
        this.#get<{ seq?: number; watchers?: number }>(workflowRunKey(runId)),
      ]);
      if (!run) throw new Error(`no workflow run ${runId}`);
      const [last, watchers] = [Number(run.seq ?? 0), Number(run.watchers ?? 0)];
      if (marked) return { watchers };
      const seq = last + 1;
      // The run's counter moves from the seq read, with its watchers as read: a connection added since
      // sends this message again (the caller pushes only to the watchers it was told of).
      const unchanged = (name: string, value: number) =>
        value === 0 ? `(attribute_not_exists(${name}) OR ${name} = :zero)` : `${name} = :${name}`;
      try {
        await this.doc.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Update: {
                  TableName,
                  Key: workflowRunKey(runId),
                  UpdateExpression: "SET seq = :next",
                  ConditionExpression: `${unchanged("seq", last)} AND ${unchanged("watchers", watchers)}`,
                  ExpressionAttributeValues: {
                    ":next": seq,
                    ...(last === 0 || watchers === 0 ? { ":zero": 0 } : {}),
                    ...(last === 0 ? {} : { ":seq": last }),
                    ...(watchers === 0 ? {} : { ":watchers": watchers }),
                  },
                },
              },
              {
                Put: {
                  TableName,
                  Item: { ...compact({ ...message, seq }), ...runMessageKey(runId, seq) },
                  ConditionExpression: "attribute_not_exists(pk)",
                },
              },
              {
                Put: {
                  TableName,
                  Item: { seq, ...runMessageMarkKey(runId, key) },
                  ConditionExpression: "attribute_not_exists(pk)",
                },
              },
            ],
          }),
        );
        return { seq, watchers };
      } catch (err) {
        // Another message (or connection) came first: read the run again and number after it.
        if (!(err instanceof TransactionCanceledException) || attempt >= APPEND_TRIES) throw err;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  async listRunMessages(runId: string, after: number): Promise<RunMessage[]> {
    return this.#first<RunMessage>(runMessagesListing(runId, after), Number.POSITIVE_INFINITY);
  }

  async listRunMessageKeys(runId: string): Promise<Set<string>> {
    const items = await this.#collect(runMessageKeysListing(runId), Number.POSITIVE_INFINITY);
    return new Set(items.map((item) => String(item.sk).slice(WORKFLOW_RUN_PARTITION.messageKeys.length)));
  }

  async addStreamConnection(runId: string, connection: StreamConnection): Promise<void> {
    const TableName = this.tableName;
    await this.#transact([
      {
        Put: {
          TableName,
          Item: streamConnectionItem(runId, connection),
          ConditionExpression: "attribute_not_exists(pk)",
        },
      },
      {
        Update: {
          TableName,
          Key: workflowRunKey(runId),
          UpdateExpression: "ADD watchers :one",
          ConditionExpression: "attribute_exists(pk)",
          ExpressionAttributeValues: { ":one": 1 },
        },
      },
    ]);
  }

  async listStreamConnections(runId: string, now: number): Promise<StreamConnection[]> {
    const connections = await this.#first<StreamConnection>(
      streamConnectionsListing(runId),
      Number.POSITIVE_INFINITY,
    );
    // DynamoDB deletes expired items late (DynamoDB Local never): they are skipped here.
    return connections.filter((c) => c.expires_at > now);
  }

  async moveStreamCursor(runId: string, connectionId: string, from: number, to: number): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: streamConnectionKey(runId, connectionId),
          UpdateExpression: "SET #cursor = :to",
          ConditionExpression: "#cursor = :from",
          ExpressionAttributeNames: { "#cursor": "cursor" },
          ExpressionAttributeValues: { ":from": from, ":to": to },
        }),
      );
      return true;
    } catch (err) {
      if (failedWrite(err) === undefined) throw err;
      return false;
    }
  }

  async removeStreamConnection(runId: string, connectionId: string): Promise<void> {
    const TableName = this.tableName;
    try {
      await this.#transact([
        {
          Delete: {
            TableName,
            Key: streamConnectionKey(runId, connectionId),
            ConditionExpression: "attribute_exists(pk)",
          },
        },
        {
          Update: {
            TableName,
            Key: workflowRunKey(runId),
            UpdateExpression: "ADD watchers :less",
            ExpressionAttributeValues: { ":less": -1 },
          },
        },
      ]);
    } catch (err) {
      if (failedWrite(err) === undefined) throw err;
    }
  }

  /** BatchWriteItem, 25 at a time, sending again what DynamoDB leaves unprocessed (after a short wait). */
  async #batchWrite(requests: NonNullable<BatchWriteCommandInput["RequestItems"]>[string]): Promise<void> {
    for (let i = 0; i < requests.length; i += 25) {
      let pending: typeof requests | undefined = requests.slice(i, i + 25);
      for (let attempt = 1; pending && pending.length > 0; attempt++) {
        const out: BatchWriteCommandOutput = await this.doc.send(
          new BatchWriteCommand({ RequestItems: { [this.tableName]: pending } }),
        );
        pending = out.UnprocessedItems?.[this.tableName];
        if (pending?.length)
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** attempt)));
      }
    }
  }

  async putRevision(revision: TemplateRevision): Promise<void> {
    const TableName = this.tableName;
    const previous =
      revision.revision > 1 && templateKey(revision.tenant, revision.name, revision.revision - 1);
    const items: TransactItem[] = [
      { Put: { TableName, Item: templateItem(revision), ConditionExpression: "attribute_not_exists(pk)" } },
      ...(previous
        ? [{ ConditionCheck: { TableName, Key: previous, ConditionExpression: "attribute_exists(pk)" } }]
        : []),
    ];
    try {
      await this.#write(items);
    } catch (err) {
      throw failedWrite(err) === undefined ? err : new CommitConflict("template");
    }
  }

  async getTemplate(tenant: string, name: string, revision?: number): Promise<TemplateRevision | undefined> {
    if (revision !== undefined) return this.#get<TemplateRevision>(templateKey(tenant, name, revision));
    const [latest] = await this.#first<TemplateRevision>(templateRevisionsListing(tenant, name), 1);
    return latest;
  }

  async listTemplates(tenant: string): Promise<TemplateRevision[]> {
    return latestRevisions(
      await this.#first<TemplateRevision>(templatesListing(tenant), Number.POSITIVE_INFINITY),
    );
  }

  getTenant(id: string): Promise<Tenant | undefined> {
    return this.#get<Tenant>(tenantKey(id));
  }

  async setTenantSettings(
    id: string,
    settings: { budget?: Tenant["budget"] | null; weight?: number | null },
  ): Promise<boolean> {
    const entries = Object.entries(settings).filter(([, value]) => value !== undefined);
    const set = entries.filter(([, value]) => value !== null);
    const removed = entries.filter(([, value]) => value === null).map(([name]) => name);
    const clauses = [
      ...(set.length > 0 ? [`SET ${set.map(([name]) => `${name} = :${name}`).join(", ")}`] : []),
      ...(removed.length > 0 ? [`REMOVE ${removed.join(", ")}`] : []),
    ];
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: tenantKey(id),
          ConditionExpression: "attribute_exists(pk)",
          UpdateExpression: clauses.join(" "),
          ...(set.length > 0 && {
            ExpressionAttributeValues: Object.fromEntries(
              set.map(([name, value]) => [`:${name}`, compact(value)]),
            ),
          }),
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  listTenants(): Promise<Tenant[]> {
    return this.#first<Tenant>(tenantsListing, Number.POSITIVE_INFINITY);
  }

  findApiKey(keyHash: string): Promise<ApiKeyRecord | WorkerKeyRecord | undefined> {
    return this.#get<ApiKeyRecord | WorkerKeyRecord>(apiKeyKey(keyHash));
  }

  listApiKeys(tenantId: string): Promise<ApiKeyRecord[]> {
    return this.#first<ApiKeyRecord>(apiKeysListing(tenantId), Number.POSITIVE_INFINITY);
  }

  async revokeApiKey(tenantId: string, keyId: string, at: string): Promise<boolean> {
    const key = (await this.listApiKeys(tenantId)).find((k) => k.key_id === keyId);
    if (!key) return false;
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: apiKeyKey(key.key_hash),
          // A second revoke keeps the first time.
          UpdateExpression: "SET revoked_time = if_not_exists(revoked_time, :at)",
          ConditionExpression: "attribute_exists(pk)",
          ExpressionAttributeValues: { ":at": at },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  async takeRateTokens(
    scope: string,
    windowStart: string,
    limits: RateLimits,
    expiresAt: number,
  ): Promise<RateCounter | undefined> {
    const counters = Object.entries(limits) as [RateCounter, number][];
    const names = Object.fromEntries(counters.map(([counter]) => [`#${counter}`, counter]));
    const values = Object.fromEntries(counters.map(([counter, limit]) => [`:${counter}`, limit]));
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: rateKey(scope, windowStart),
          UpdateExpression: `ADD ${counters.map(([c]) => `#${c} :one`).join(", ")} SET #expires = :expires`,
          ConditionExpression: counters
            .map(([c]) => `(attribute_not_exists(#${c}) OR #${c} < :${c})`)
            .join(" AND "),
          ExpressionAttributeNames: { ...names, "#expires": TABLE.ttlAttribute },
          ExpressionAttributeValues: { ...values, ":one": 1, ":expires": expiresAt },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return undefined;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      const count = (counter: RateCounter) => Number(err.Item?.[counter]?.N ?? 0);
      return (counters.find(([counter, limit]) => count(counter) >= limit) ?? counters[0])?.[0];
    }
  }
}
