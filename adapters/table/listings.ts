/** The table's listings (key ranges of the table or an index), their cursors and pages. */
import { ValidationError } from "../../core/errors.ts";
import { changeIdOf, type DomainEvent } from "../../core/events.ts";
import { TABLE } from "../../core/names.ts";
import type { Page, RunQuery, TaskQuery } from "../../core/ports.ts";
import { eventsOfLogItem, type Item, PARTITIONS, recordOf, TASK_PARTITION, taskKey } from "./keys.ts";

type Index = (typeof TABLE.indexes)[keyof typeof TABLE.indexes];

/** One key range of the table or of an index, read in sort-key order, with equality filters applied after. */
export interface Listing {
  /** Absent: the table itself. */
  index?: Index;
  pk: string;
  skPrefix?: string;
  /** Inclusive lower bound of the sort key; needs skMax. */
  skMin?: string;
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
  pk: PARTITIONS.tenantTasks(q.tenant),
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
        pk: PARTITIONS.tenantRuns(q.tenant),
        skPrefix: q.status && `${q.status}#`,
        forward: false,
        filters: [],
      }
    : {
        pk: taskKey(q.taskUuid).pk,
        skPrefix: TASK_PARTITION.runs,
        forward: true,
        filters: [{ path: ["tenant"], value: q.tenant }, ...equals(["status"], q.status)],
      };

/** A task's event log, oldest first: all of it, or from the change holding event `fromId` on. */
export const eventsListing = (taskUuid: string, fromId?: string): Listing => ({
  pk: taskKey(taskUuid).pk,
  skPrefix: TASK_PARTITION.events,
  ...(fromId !== undefined && {
    skMin: `${TASK_PARTITION.events}${changeIdOf(fromId)}`,
    skMax: `${TASK_PARTITION.events}\uffff`,
  }),
  forward: true,
  filters: [],
});

/**
 * Log items to read for a page of `size` events: every item holds at least one event, and the first may
 * hold only events up to the cursor's.
 */
export const eventItemsFor = (size: number) => size + 2;

/** An event cursor is the last event id a page gave, which also names the log item to read on from. */
const EVENT_ID = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z#\d{9}#\d+$/;

/** The event id a cursor of a task's events names; a ValidationError on `cursor` otherwise. */
export function decodeEventCursor(cursor: string): string {
  const id = Buffer.from(cursor, "base64url").toString("utf8");
  if (!EVENT_ID.test(id)) throw new ValidationError("cursor", "is not a cursor of this listing");
  return id;
}

/** A page of the events after `afterId` from the log items read (eventItemsFor), oldest first. */
export function eventsPageOf(
  items: Item[],
  size: number,
  total: number,
  afterId?: string,
): Page<DomainEvent> {
  const events = items
    .flatMap(eventsOfLogItem)
    .filter((event) => afterId === undefined || event.id > afterId);
  const page = events.slice(0, size);
  const last = events.length > size ? page.at(-1) : undefined;
  return { items: page, total, ...(last && { nextCursor: Buffer.from(last.id).toString("base64url") }) };
}

/** The events an item of a task's log holds (older items hold one and no count). */
export const eventCountOf = (item: Item) => (item.count as number | undefined) ?? 1;

export const readyListing = (pool: string): Listing => ({
  index: TABLE.indexes.ready,
  pk: PARTITIONS.ready(pool),
  forward: true,
  filters: [],
});

export const keyWaitingListing = (key: string): Listing => ({
  index: TABLE.indexes.ready,
  pk: PARTITIONS.keyWaiting(key),
  forward: true,
  filters: [],
});

export const dueListing = (shard: number, before: string): Listing => ({
  index: TABLE.indexes.due,
  pk: PARTITIONS.due(shard),
  skMax: `${before}#\uffff`,
  forward: true,
  filters: [],
});

export const tenantsListing: Listing = {
  index: TABLE.indexes.byTenant,
  pk: PARTITIONS.tenants,
  forward: true,
  filters: [],
};

/** Workers by pool. DynamoDB's TTL deletes expired records within days, so readers filter on expires_at. */
export const workersListing: Listing = {
  index: TABLE.indexes.byTenant,
  pk: PARTITIONS.workers,
  forward: true,
  filters: [],
};

export const apiKeysListing = (tenantId: string): Listing => ({
  index: TABLE.indexes.byTenant,
  pk: PARTITIONS.tenantKeys(tenantId),
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
