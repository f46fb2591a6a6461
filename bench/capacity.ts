/**
 * DynamoDB write capacity, as AWS would charge it. DynamoDB Local reports a flat figure for any
 * TransactWriteItems whatever its items, so the benchmark replays the recorded writes, in the order they
 * were made, one item at a time on a fresh table with the same definition: DynamoDB Local then reports each
 * item write with its index updates (a changed index key is a delete plus a put) correctly. Items written
 * inside a transaction count twice for the table (AWS: prepare and commit); index updates count once
 * (they are applied asynchronously, outside the transaction; an assumption, stated in the results).
 */
import {
  CreateTableCommand,
  DeleteItemCommand,
  type DeleteItemCommandInput,
  DeleteTableCommand,
  type DynamoDBClient,
  PutItemCommand,
  type PutItemCommandInput,
  UpdateItemCommand,
  type UpdateItemCommandInput,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import { tableDefinition } from "../adapters/aws/table-definition.ts";
import { TABLE } from "../core/names.ts";
import type { RecordedWrite } from "./request-counter.ts";

export interface WriteUnits {
  table: number;
  index: number;
}

/** What the replay found: units per request kind, and where they land (for the scale model). */
export interface ReplayedUnits {
  /** By `where service operation detail`. */
  byRequest: Record<string, WriteUnits>;
  /** Table write units by item kind (sort-key prefix: TASK, RUN, POOL, RATE…), API and workers only. */
  byItemKind: Record<string, number>;
  /** Index write units by index and partition (`by-tenant T#<tenant>#TASK`…), API and workers only. */
  byIndexPartition: Record<string, number>;
  /**
   * Where each request kind's units land, by `where key`: `table <partition key>` (named by `keyPattern`)
   * and `index <name> <partition>`, API and workers only. What bench/scale.ts replays.
   */
  byRequestKey: Record<string, Record<string, number>>;
}

const INDEX_KEYS = Object.values(TABLE.indexes).map((index) => ({
  name: index.name,
  pk: index.partitionKey,
}));

/** An index partition key with its variable part named: `READY#claude-main` → `READY#<pool>`. */
const partitionOf = (pk: string) =>
  pk
    .replace(/^T#.*#(TASK|RUN)#\d+$/, "T#<tenant>#$1#<list-shard>")
    .replace(/^T#.*#KEY$/, "T#<tenant>#KEY")
    .replace(/^READY#.*$/, "READY#<pool>")
    .replace(/^DUE#\d+$/, "DUE#<shard>");

type Item = Record<string, { S?: string }>;

/** The item kind a write lands on: its sort key's prefix. */
function itemKind(op: Loose): string {
  const key = (op.Key ?? op.Item) as Record<string, { S?: string }> | undefined;
  return key?.sk?.S?.split("#")[0] ?? "?";
}

type Loose = Record<string, unknown>;

/** Keeps the expression names and values that `expression` uses (a dropped condition used the others). */
function used(expression: string, names?: Loose, values?: Loose) {
  const keep = (map: Loose | undefined, sigil: string) => {
    if (!map) return undefined;
    const kept = Object.fromEntries(
      Object.entries(map).filter(([k]) =>
        new RegExp(`${sigil}${k.slice(1)}(?![A-Za-z0-9_])`).test(expression),
      ),
    );
    return Object.keys(kept).length ? kept : undefined;
  };
  return { ExpressionAttributeNames: keep(names, "#"), ExpressionAttributeValues: keep(values, ":") };
}

/** One item write of a recorded request, unconditional, on `table`. */
function itemWrites(write: RecordedWrite, table: string): { op: Loose; kind: string }[] {
  const single = (kind: string, op: Loose) => {
    if (kind === "Put") return { kind, op: { TableName: table, Item: op.Item } };
    if (kind === "Delete") return { kind, op: { TableName: table, Key: op.Key } };
    if (kind === "Update") {
      const expression = op.UpdateExpression as string;
      return {
        kind,
        op: {
          TableName: table,
          Key: op.Key,
          UpdateExpression: expression,
          ...used(expression, op.ExpressionAttributeNames as Loose, op.ExpressionAttributeValues as Loose),
        },
      };
    }
    return undefined;
  };
  const { input } = write;
  const out: ({ op: Loose; kind: string } | undefined)[] = [];
  if (write.operation === "TransactWriteItems") {
    for (const item of (input.TransactItems as Loose[]) ?? []) {
      const [kind, op] = Object.entries(item)[0] ?? [];
      if (kind) out.push(single(kind, op as Loose));
    }
  } else if (write.operation === "PutItem") out.push(single("Put", input));
  else if (write.operation === "UpdateItem") out.push(single("Update", input));
  else if (write.operation === "DeleteItem") out.push(single("Delete", input));
  return out.filter((w) => w !== undefined);
}

/** Replays the writes on a scratch table; returns the write units per `where key`. */
export async function replayWriteUnits(
  dynamodb: DynamoDBClient,
  tableName: string,
  writes: (RecordedWrite & { where: string })[],
  keyPattern: (pk: string) => string,
): Promise<ReplayedUnits> {
  const scratch = `${tableName}-capacity`;
  await dynamodb.send(new CreateTableCommand(tableDefinition(scratch)));
  await waitUntilTableExists(
    { client: dynamodb, minDelay: 1, maxDelay: 2, maxWaitTime: 60 },
    { TableName: scratch },
  );
  const units: Record<string, WriteUnits> = {};
  const byItemKind: Record<string, number> = {};
  const byIndexPartition: Record<string, number> = {};
  const byRequestKey: Record<string, Record<string, number>> = {};
  /** The items as last written, to know which index partition an update or a removal touched. */
  const items = new Map<string, Item>();
  const keyOf = (op: Loose) => {
    const key = (op.Key ?? op.Item) as Item;
    return `${key.pk?.S}|${key.sk?.S}`;
  };
  const add = (map: Record<string, number>, key: string, n: number) => {
    map[key] = (map[key] ?? 0) + n;
  };
  try {
    for (const write of [...writes].sort((a, b) => a.at - b.at)) {
      const factor = write.operation === "TransactWriteItems" ? 2 : 1;
      for (const { kind, op } of itemWrites(write, scratch)) {
        const input = { ...op, ReturnConsumedCapacity: "INDEXES" as const };
        const out =
          kind === "Put"
            ? await dynamodb.send(new PutItemCommand(input as PutItemCommandInput))
            : kind === "Update"
              ? await dynamodb.send(new UpdateItemCommand(input as UpdateItemCommandInput))
              : await dynamodb.send(new DeleteItemCommand(input as DeleteItemCommandInput));
        const consumed = out.ConsumedCapacity;
        const table = factor * (consumed?.Table?.CapacityUnits ?? 0);
        const indexes = Object.entries(consumed?.GlobalSecondaryIndexes ?? {});
        const u = units[`${write.where} ${write.key}`] ?? { table: 0, index: 0 };
        units[`${write.where} ${write.key}`] = u;
        u.table += table;
        u.index += indexes.reduce((n, [, c]) => n + (c.CapacityUnits ?? 0), 0);
        const before = items.get(keyOf(op));
        if (kind === "Put") items.set(keyOf(op), op.Item as Item);
        if (kind === "Delete") items.delete(keyOf(op));
        if (write.where === "tick") continue;
        add(byItemKind, itemKind(op), table);
        byRequestKey[`${write.where} ${write.key}`] ??= {};
        const landing = byRequestKey[`${write.where} ${write.key}`] as Record<string, number>;
        add(landing, `table ${keyPattern(keyOf(op).split("|")[0] as string)}`, table);
        for (const [name, c] of indexes) {
          const pkName = INDEX_KEYS.find((i) => i.name === name)?.pk ?? "";
          const pk = (op.Item as Item | undefined)?.[pkName]?.S ?? before?.[pkName]?.S ?? "?";
          add(byIndexPartition, `${name} ${partitionOf(pk)}`, c.CapacityUnits ?? 0);
          add(landing, `index ${name} ${partitionOf(pk)}`, c.CapacityUnits ?? 0);
        }
      }
    }
  } finally {
    await dynamodb.send(new DeleteTableCommand({ TableName: scratch })).catch(() => undefined);
  }
  return { byRequest: units, byItemKind, byIndexPartition, byRequestKey };
}
