/** The table's listings (key ranges of the table or an index), their cursors and pages. */

import { createHash } from "node:crypto";
import { ValidationError } from "../../core/errors.ts";
import { changeIdOf, type DomainEvent } from "../../core/events.ts";
import { TABLE } from "../../core/names.ts";
import type { Page, RunQuery, TaskQuery } from "../../core/ports.ts";
import { scopedConcurrencyKey, type Task } from "../../core/records.ts";
import type { TemplateRevision } from "../../core/templates.ts";
import {
  eventsOfLogItem,
  type Item,
  LISTING_SHARDS,
  PARTITIONS,
  readySortKey,
  recordOf,
  runEdgeKey,
  runMessageKey,
  TASK_PARTITION,
  taskKey,
  WORKFLOW_RUN_PARTITION,
  workflowKey,
  workflowRunKey,
} from "./keys.ts";

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

/** One listing per shard of a tenant's listing partition, merged by the stores (mergedPageOf). */
const shards = Array.from({ length: LISTING_SHARDS }, (_, shard) => shard);

/** A tenant's tasks, newest first within a status; those of a concurrency key, newest first. */
export function taskListings(q: TaskQuery): Listing[] {
  const filters = [
    ...equals(["pool"], q.pool),
    ...equals(["namespace"], q.namespace),
    ...(q.tag ? equals(["tags", q.tag.key], q.tag.value) : []),
  ];
  if (q.concurrencyKey !== undefined) {
    const pk = PARTITIONS.keyTasks(
      scopedConcurrencyKey({ tenant: q.tenant, concurrency_key: q.concurrencyKey }) as string,
    );
    const byStatus = equals(["status"], q.status);
    return [{ index: TABLE.indexes.byKey, pk, forward: false, filters: [...byStatus, ...filters] }];
  }
  return shards.map((shard) => ({
    index: TABLE.indexes.byTenant,
    pk: PARTITIONS.tenantTasks(q.tenant, shard),
    skPrefix: q.status && `${q.status}#`,
    forward: false,
    filters,
  }));
}

/** A task's runs oldest first (the tenant must own them), or a tenant's runs newest first within a status. */
export const runListings = (q: RunQuery): Listing[] =>
  q.taskUuid === undefined
    ? shards.map((shard) => ({
        index: TABLE.indexes.byTenant,
        pk: PARTITIONS.tenantRuns(q.tenant, shard),
        skPrefix: q.status && `${q.status}#`,
        forward: false,
        filters: [],
      }))
    : [
        {
          pk: taskKey(q.taskUuid).pk,
          skPrefix: TASK_PARTITION.runs,
          forward: true,
          filters: [{ path: ["tenant"], value: q.tenant }, ...equals(["status"], q.status)],
        },
      ];

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

/**
 * The queued tasks of a task's pool that are admitted before it: its ready queue up to just below the
 * task's own sort key (the same key with its last character one lower, then the highest character).
 */
export function readyAheadListing(task: Task): Listing {
  const own = readySortKey(task);
  const below = `${own.slice(0, -1)}${String.fromCharCode(own.charCodeAt(own.length - 1) - 1)}\uffff`;
  return { ...readyListing(task.pool), skMax: below };
}

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

/** A template's revisions, the latest first. */
export const templateRevisionsListing = (tenant: string, name: string): Listing => ({
  pk: `TEMPLATE#${tenant}#${name}`,
  skPrefix: "REV#",
  forward: false,
  filters: [],
});

/** Every revision of a tenant's templates, by name then revision. */
export const templatesListing = (tenant: string): Listing => ({
  index: TABLE.indexes.byTenant,
  pk: PARTITIONS.tenantTemplates(tenant),
  forward: true,
  filters: [],
});

/** A workflow's definition, nodes and edges: its whole partition. */
export const workflowListing = (id: string): Listing => ({
  pk: workflowKey(id).pk,
  forward: true,
  filters: [],
});

/** A tenant's workflows, newest first. */
export const workflowsListing = (tenant: string): Listing => ({
  index: TABLE.indexes.byTenant,
  pk: PARTITIONS.tenantWorkflows(tenant),
  forward: false,
  filters: [],
});

/** A workflow run's record and node runs: its whole partition. */
export const workflowRunListing = (runId: string): Listing => ({
  pk: workflowRunKey(runId).pk,
  forward: true,
  filters: [],
});

/** A run's stream messages after `after`, by seq. */
export const runMessagesListing = (runId: string, after: number): Listing => ({
  pk: workflowRunKey(runId).pk,
  skMin: runMessageKey(runId, after + 1).sk,
  skMax: runMessageKey(runId, 999_999_999).sk,
  forward: true,
  filters: [],
});

/** The edges out of a node of a run. */
export const runEdgesListing = (runId: string, source: string): Listing => ({
  pk: workflowRunKey(runId).pk,
  skPrefix: runEdgeKey(runId, source, "").sk,
  forward: true,
  filters: [],
});

/** The keys a run's messages were appended under. */
export const runMessageKeysListing = (runId: string): Listing => ({
  pk: workflowRunKey(runId).pk,
  skPrefix: WORKFLOW_RUN_PARTITION.messageKeys,
  forward: true,
  filters: [],
});

/** The connections watching a run's stream. */
export const streamConnectionsListing = (runId: string): Listing => ({
  pk: workflowRunKey(runId).pk,
  skPrefix: WORKFLOW_RUN_PARTITION.connections,
  forward: true,
  filters: [],
});

/** A workflow's runs, newest first. */
export const workflowRunsListing = (workflowId: string): Listing => ({
  index: TABLE.indexes.byTenant,
  pk: PARTITIONS.workflowRuns(workflowId),
  forward: false,
  filters: [],
});

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

/** Where a merged listing goes on from, per listing: after a key, from its start (null), or nowhere. */
export type Position = Record<string, string> | null | "done";

/** The start key of a position within one listing; a forged one is refused. */
function startKeyOf(value: unknown, listing: Listing): Record<string, string> {
  const invalid = new ValidationError("cursor", "is not a cursor of this listing");
  if (typeof value !== "object" || value === null) throw invalid;
  const key: Record<string, string> = {};
  for (const name of cursorAttributes(listing)) {
    const v = (value as Record<string, unknown>)[name];
    // A client may forge a cursor: only values that could be key attributes reach the store (DynamoDB
    // refuses empty ones, and sort keys past 1024 bytes).
    if (typeof v !== "string" || v === "" || Buffer.byteLength(v) > 1024) throw invalid;
    key[name] = v;
  }
  const { pkName, skName } = keyNamesOf(listing);
  if (key[pkName] !== listing.pk || !key[skName]?.startsWith(listing.skPrefix ?? "")) throw invalid;
  return key;
}

/** What a cursor belongs to: the key ranges of its listings (a cursor of one never reads another). */
const listingsId = (listings: Listing[]) =>
  createHash("sha256")
    .update(JSON.stringify(listings.map((l) => [l.index?.name, l.pk, l.skPrefix])))
    .digest("base64url")
    .slice(0, 16);

interface Cursor {
  of: string;
  at: Position[];
}

/** The positions a cursor names, one per listing (all at their start without one); else a ValidationError. */
export function decodePositions(cursor: string | undefined, listings: Listing[]): Position[] {
  if (cursor === undefined) return listings.map(() => null);
  const invalid = new ValidationError("cursor", "is not a cursor of this listing");
  let parsed: Partial<Cursor> | null;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalid;
  }
  const at = parsed?.at;
  if (parsed?.of !== listingsId(listings) || !Array.isArray(at) || at.length !== listings.length)
    throw invalid;
  return at.map((p, i) => (p === null || p === "done" ? p : startKeyOf(p, listings[i] as Listing)));
}

/** DynamoDB orders strings by their UTF-8 bytes. */
export const compareKeys = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * A page from listings read in parallel, each from its position, up to `size + 1` items each: merged in
 * sort-key order, the first `size` kept. The cursor says where each listing goes on.
 */
export function mergedPageOf<T>(
  fetched: Item[][],
  positions: Position[],
  size: number,
  total: number,
  listings: Listing[],
): Page<T> {
  const [first] = listings;
  if (!first) throw new Error("a merged page needs a listing");
  const { skName } = keyNamesOf(first);
  const direction = first.forward ? 1 : -1;
  const merged = fetched
    .flatMap((items, from) => items.map((item) => ({ item, from })))
    .sort((a, b) => compareKeys(a.item[skName] as string, b.item[skName] as string) * direction);
  const page = merged.slice(0, size);
  const next = positions.map((position, i): Position => {
    const taken = page.filter((p) => p.from === i);
    const read = fetched[i] ?? [];
    if (read.length <= size && taken.length === read.length) return "done";
    const last = taken.at(-1);
    return last ? startAfter(last.item, listings[i] as Listing) : position;
  });
  return {
    items: page.map(({ item }) => recordOf<T>(item)),
    total,
    ...(merged.length > size && {
      nextCursor: Buffer.from(
        JSON.stringify({ of: listingsId(listings), at: next } satisfies Cursor),
      ).toString("base64url"),
    }),
  };
}

/** Of revisions listed by name then revision, the latest of each name. */
export function latestRevisions(revisions: TemplateRevision[]): TemplateRevision[] {
  const latest = new Map<string, TemplateRevision>();
  for (const revision of revisions) latest.set(revision.name, revision);
  return [...latest.values()];
}
