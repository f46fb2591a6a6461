/**
 * The single-table model shared by the DynamoDB adapter and its in-memory fake: item keys, the writes of a
 * StateChange, listings and cursors. Plain data only; no AWS SDK. Index names and key attributes: TABLE.
 */
import { ConflictError, ValidationError } from "../core/errors.ts";
import { type DomainEvent, EVENT_RETENTION_DAYS } from "../core/events.ts";
import { DUE_SHARDS, EVENT_SORT_KEY_PREFIX, TABLE } from "../core/names.ts";
import type { CommitConflictReason, Page, RunQuery, StateChange, TaskQuery } from "../core/ports.ts";
import {
  type ApiKeyRecord,
  dueAt,
  type Run,
  type Task,
  type Tenant,
  type WorkerRecord,
} from "../core/schemas.ts";

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
}

const KEY_ATTRIBUTES = ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"];

/** The due-index shard of a task: a stable FNV-1a hash of its uuid. */
export function dueShard(uuid: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < uuid.length; i++) hash = Math.imul(hash ^ uuid.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % DUE_SHARDS;
}

export const taskKey = (uuid: string): Key => ({ pk: `TASK#${uuid}`, sk: "TASK" });
export const runKey = (taskUuid: string, runId: string): Key => ({
  pk: `TASK#${taskUuid}`,
  sk: `RUN#${runId}`,
});
export const poolKey = (pool: string): Key => ({ pk: `POOL#${pool}`, sk: "POOL" });
export const concurrencyKeyKey = (key: string): Key => ({ pk: `CKEY#${key}`, sk: "CKEY" });
export const queuedCountKey = (tenant: string): Key => ({ pk: `TENANT#${tenant}`, sk: "QUEUED" });
export const idempotencyKey = (tenant: string, key: string): Key => ({
  pk: `IDEM#${tenant}#${key}`,
  sk: "IDEM",
});
export const tenantKey = (id: string): Key => ({ pk: `TENANT#${id}`, sk: "TENANT" });
export const apiKeyKey = (keyHash: string): Key => ({ pk: `KEY#${keyHash}`, sk: "KEY" });
/** One fixed window of a rate counter (core/limits.ts): attributes `count` and the TTL `expires_at`. */
export const rateKey = (counter: string, windowStart: string): Key => ({
  pk: `RATE#${counter}#${windowStart}`,
  sk: "RATE",
});

/** All keys of a task, derived from the whole record: the ready and due indexes are sparse. */
function taskKeys(task: Task): Key & IndexKeys {
  return {
    ...taskKey(task.uuid),
    gsi1pk: `T#${task.tenant}#TASK`,
    gsi1sk: `${task.status}#${task.create_time}#${task.uuid}`,
    ...(task.status === "queued" && {
      gsi2pk: `READY#${task.pool}`,
      gsi2sk: `${9 - task.priority}#${task.ready_time ?? task.create_time}#${task.uuid}`,
    }),
    ...(dueAt(task) !== undefined && {
      gsi3pk: `DUE#${dueShard(task.uuid)}`,
      gsi3sk: `${dueAt(task)}#${task.uuid}`,
    }),
  };
}

export const taskItem = (task: Task): Item & Key => ({ ...compact(task), ...taskKeys(task) });
export const runItem = (run: Run): Item & Key => ({
  ...compact(run),
  ...runKey(run.task_uuid, run.run_id),
  gsi1pk: `T#${run.tenant}#RUN`,
  gsi1sk: `${run.status}#${run.create_time}#${run.run_id}`,
});
export const tenantItem = (tenant: Tenant): Item & Key => ({
  ...compact(tenant),
  ...tenantKey(tenant.id),
  gsi1pk: "TENANTS",
  gsi1sk: `${tenant.create_time}#${tenant.id}`,
});
export const apiKeyItem = (key: ApiKeyRecord): Item & Key => ({
  ...compact(key),
  ...apiKeyKey(key.key_hash),
  gsi1pk: `T#${key.tenant_id}#KEY`,
  gsi1sk: key.key_id,
});

export const workerItem = (worker: WorkerRecord): Item & Key => ({
  ...compact(worker),
  pk: `WORKER#${worker.worker_id}`,
  sk: "WORKER",
  gsi1pk: "WORKERS",
  gsi1sk: `${worker.pool}#${worker.worker_id}`,
});

/** Events live in their task's partition, so a task's log is one Query; they expire after the retention. */
export const eventItem = (event: DomainEvent): Item & Key => ({
  ...compact(event),
  pk: taskKey(event.task_uuid).pk,
  sk: `${EVENT_SORT_KEY_PREFIX}${event.id}`,
  expires_at: Math.floor(Date.parse(event.time) / 1000) + EVENT_RETENTION_DAYS * 86_400,
});

export const eventsListing = (taskUuid: string): Listing => ({
  pk: taskKey(taskUuid).pk,
  skPrefix: EVENT_SORT_KEY_PREFIX,
  forward: true,
  filters: [],
});

/** A tenant or API key that a create found already stored. */
export const alreadyExists = () => new ConflictError("tenant or API key already exists");

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

/** Counter attributes: slots held (pools, concurrency keys) and tasks waiting in `queued` (pools, tenants). */
export type Counter = "active" | "queued";

/** The conditions of a counter write; all must hold. */
export interface CountConditions {
  /** This counter is below the limit before the write. */
  below?: { counter: Counter; limit: number };
  /** The item is not paused (`paused_until`) past this time. */
  notPausedAfter?: string;
  /** This counter is 0. */
  zero?: Counter;
}

/**
 * One write of a StateChange. `put` writes a whole item if the stored version is `expectVersion` (absent:
 * the item must not exist); `count` adds to counters of an item (a missing counter is 0), if `when` holds.
 */
export type Write =
  | { type: "put"; item: Item & Key; expectVersion?: number; conflict: CommitConflictReason }
  | {
      type: "count";
      key: Key;
      add: Partial<Record<Counter, number>>;
      when?: CountConditions;
      conflict?: "pool_closed" | "key_busy" | "queued_quota";
    }
  | { type: "append"; item: Item & Key };

/** What a write's failed condition means; none for a write without conditions, which never fails a change. */
export const conflictOf = (w: Write): CommitConflictReason | undefined =>
  w.type === "append" || (w.type === "count" && !w.when) ? undefined : w.conflict;

/**
 * The pools' counter writes of a change, one per pool item: slots taken (under max_concurrency, while not
 * paused; with `noneQueued`, only if no task waits) or given back, and the task entering or leaving the
 * pool's queue. A change that takes and gives back a slot of one pool writes its item twice (refused).
 */
function poolWrites(change: StateChange): Write[] {
  const { acquire, release, queued } = change;
  const writes: (Write & { type: "count" })[] = [];
  if (acquire) {
    writes.push({
      type: "count",
      key: poolKey(acquire.pool),
      add: { active: 1 },
      when: {
        below: { counter: "active", limit: acquire.maxConcurrency },
        notPausedAfter: acquire.now,
        ...(acquire.noneQueued && { zero: "queued" as const }),
      },
      conflict: "pool_closed",
    });
  }
  if (release) writes.push({ type: "count", key: poolKey(release.pool), add: { active: -1 } });
  if (queued) {
    const same = writes.find((w) => w.key.pk === poolKey(queued.pool).pk);
    if (same) same.add.queued = queued.delta;
    else writes.push({ type: "count", key: poolKey(queued.pool), add: { queued: queued.delta } });
  }
  return writes;
}

/** The writes of a StateChange, in the order whose first failed condition names the conflict. */
export function writesOf(change: StateChange): Write[] {
  const writes: Write[] = [
    ...(change.tasks ?? []).map(
      ({ next, expectVersion }): Write => ({
        type: "put",
        item: taskItem(next),
        expectVersion,
        conflict: "task",
      }),
    ),
    ...(change.runs ?? []).map(
      ({ next, expectVersion }): Write => ({
        type: "put",
        item: runItem(next),
        expectVersion,
        conflict: "run",
      }),
    ),
    ...poolWrites(change),
  ];
  const { acquire, release, idempotency, queued } = change;
  if (acquire?.concurrencyKey !== undefined) {
    writes.push({
      type: "count",
      key: concurrencyKeyKey(acquire.concurrencyKey),
      add: { active: 1 },
      when: { below: { counter: "active", limit: acquire.keyLimit } },
      conflict: "key_busy",
    });
  }
  if (idempotency) {
    const item = { ...compact(idempotency), ...idempotencyKey(idempotency.tenant, idempotency.key) };
    writes.push({ type: "put", item, conflict: "idempotency" });
  }
  if (queued) {
    const key = queuedCountKey(queued.tenant);
    const limit = queued.delta > 0 ? queued.limit : undefined;
    writes.push({
      type: "count",
      key,
      add: { queued: queued.delta },
      ...(limit !== undefined && {
        when: { below: { counter: "queued" as const, limit } },
        conflict: "queued_quota" as const,
      }),
    });
  }
  for (const event of change.events ?? []) writes.push({ type: "append", item: eventItem(event) });
  if (release?.concurrencyKey !== undefined) {
    writes.push({ type: "count", key: concurrencyKeyKey(release.concurrencyKey), add: { active: -1 } });
  }
  return writes;
}

export const keyOfWrite = (write: Write): Key => ("item" in write ? write.item : write.key);

type Index = (typeof TABLE.indexes)[keyof typeof TABLE.indexes];

/** One key range of the table or of an index, read in sort-key order, with equality filters applied after. */
export interface Listing {
  /** Absent: the table itself. */
  index?: Index;
  pk: string;
  skPrefix?: string;
  /** Inclusive upper bound of the sort key. */
  skMax?: string;
  forward: boolean;
  filters: { path: string[]; value: string }[];
}

/** The partition- and sort-key attribute names a listing reads. */
export const keyNamesOf = (listing: Listing) => ({
  pkName: listing.index?.partitionKey ?? TABLE.partitionKey,
  skName: listing.index?.sortKey ?? TABLE.sortKey,
});

const equals = (path: string[], value: string | undefined) => (value === undefined ? [] : [{ path, value }]);

/** A tenant's tasks, newest first within a status. */
export const taskListing = (q: TaskQuery): Listing => ({
  index: TABLE.indexes.byTenant,
  pk: `T#${q.tenant}#TASK`,
  skPrefix: q.status && `${q.status}#`,
  forward: false,
  filters: [
    ...equals(["pool"], q.pool),
    ...equals(["namespace"], q.namespace),
    ...(q.tag ? equals(["tags", q.tag.key], q.tag.value) : []),
  ],
});

/** A task's runs oldest first (the tenant must own them), or a tenant's runs newest first. */
export const runListing = (q: RunQuery): Listing =>
  q.taskUuid === undefined
    ? {
        index: TABLE.indexes.byTenant,
        pk: `T#${q.tenant}#RUN`,
        skPrefix: q.status && `${q.status}#`,
        forward: false,
        filters: [],
      }
    : {
        pk: taskKey(q.taskUuid).pk,
        skPrefix: "RUN#",
        forward: true,
        filters: [{ path: ["tenant"], value: q.tenant }, ...equals(["status"], q.status)],
      };

export const readyListing = (pool: string): Listing => ({
  index: TABLE.indexes.ready,
  pk: `READY#${pool}`,
  forward: true,
  filters: [],
});

export const dueListing = (shard: number, before: string): Listing => ({
  index: TABLE.indexes.due,
  pk: `DUE#${shard}`,
  skMax: `${before}#\uffff`,
  forward: true,
  filters: [],
});

export const tenantsListing: Listing = {
  index: TABLE.indexes.byTenant,
  pk: "TENANTS",
  forward: true,
  filters: [],
};

/** Workers by pool. DynamoDB's TTL deletes expired records within days, so readers filter on expires_at. */
export const workersListing: Listing = {
  index: TABLE.indexes.byTenant,
  pk: "WORKERS",
  forward: true,
  filters: [],
};

export const apiKeysListing = (tenantId: string): Listing => ({
  index: TABLE.indexes.byTenant,
  pk: `T#${tenantId}#KEY`,
  forward: true,
  filters: [],
});

/** The attributes that position a read within a listing (DynamoDB's ExclusiveStartKey). */
const cursorAttributes = (listing: Listing) => [
  ...new Set([TABLE.partitionKey, TABLE.sortKey, ...Object.values(keyNamesOf(listing))]),
];

/** The ExclusiveStartKey that reads a listing on after `item`. */
export const startAfter = (item: Item, listing: Listing): Record<string, string> =>
  Object.fromEntries(cursorAttributes(listing).map((name) => [name, item[name] as string]));

function encodeCursor(item: Item, listing: Listing): string {
  return Buffer.from(JSON.stringify(startAfter(item, listing))).toString("base64url");
}

/** The start key of a cursor; a ValidationError on `cursor` unless this listing produced it. */
export function decodeCursor(cursor: string, listing: Listing): Record<string, string> {
  const invalid = new ValidationError("cursor", "is not a cursor of this listing");
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalid;
  }
  if (typeof parsed !== "object" || parsed === null) throw invalid;
  const key: Record<string, string> = {};
  for (const name of cursorAttributes(listing)) {
    const value = (parsed as Record<string, unknown>)[name];
    // A client may forge a cursor: only values that could be key attributes reach the store (DynamoDB
    // refuses empty ones, and sort keys past 1024 bytes).
    if (typeof value !== "string" || value === "" || Buffer.byteLength(value) > 1024) throw invalid;
    key[name] = value;
  }
  const { pkName, skName } = keyNamesOf(listing);
  if (key[pkName] !== listing.pk || !key[skName]?.startsWith(listing.skPrefix ?? "")) throw invalid;
  return key;
}

/** A page from the first `size + 1` items after the cursor: the extra item only says that more follow. */
export function pageOf<T>(items: Item[], size: number, total: number, listing: Listing): Page<T> {
  const last = items.length > size ? items[size - 1] : undefined;
  return {
    items: items.slice(0, size).map((item) => recordOf<T>(item)),
    total,
    ...(last && { nextCursor: encodeCursor(last, listing) }),
  };
}
