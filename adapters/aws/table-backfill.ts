/**
 * Brings the task and run items an earlier version wrote up to the current layout, beside live traffic: a
 * scan in parallel segments, and per item that is behind one write on the condition that its version is
 * still the one the scan saw, so that a transition written meanwhile (which keys its item anew) is never
 * undone. Safe to run again: current items are left alone. What it brings up to date:
 * - tasks and runs onto their listing shard of the by-tenant index (once one partition a tenant,
 *   `T#<tenant>#TASK`);
 * - tasks with a concurrency key onto the by-key index;
 * - open tasks with a concurrency key into their key's count of open tasks (core/commit.ts), in one
 *   transaction with the count. That write moves the task's version on, so that a writer holding the copy
 *   the scan saw reads it again instead of writing back a task the count does not know.
 */
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import {
  type DynamoDBDocumentClient,
  paginateScan,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { TABLE } from "../../core/names.ts";
import { scopedConcurrencyKey, type Task } from "../../core/records.ts";
import { TERMINAL_STATUSES } from "../../core/status.ts";
import {
  type Item,
  keyOpenTasksKey,
  keyTasksKeys,
  listingPartitionOf,
  TASK_PARTITION,
} from "../table/keys.ts";

export interface BackfillReport {
  scanned: number;
  /** Items written: keyed anew, counted, or both. */
  moved: number;
  /** Open tasks counted among their key's open tasks. */
  counted: number;
}

export async function backfillTable(
  doc: DynamoDBDocumentClient,
  tableName: string,
  segments = 4,
): Promise<BackfillReport> {
  const report: BackfillReport = { scanned: 0, moved: 0, counted: 0 };
  const segment = async (Segment: number) => {
    const pages = paginateScan(
      { client: doc },
      {
        TableName: tableName,
        Segment,
        TotalSegments: segments,
        FilterExpression: "sk = :task OR begins_with(sk, :run)",
        ExpressionAttributeValues: { ":task": "TASK", ":run": TASK_PARTITION.runs },
      },
    );
    for await (const page of pages) {
      for (const item of (page.Items ?? []) as Item[]) {
        report.scanned++;
        const behind = behindOf(item);
        if (!behind) continue;
        if (!(await bringUp(doc, tableName, item, behind))) continue;
        report.moved++;
        if (behind.countOn) report.counted++;
      }
    }
  };
  await Promise.all(Array.from({ length: segments }, (_, i) => segment(i)));
  return report;
}

/** What an item lacks: index keys to set, and the key whose open tasks it must join. */
interface Behind {
  keys: Record<string, string>;
  countOn?: string;
}

function behindOf(item: Item): Behind | undefined {
  const expected: Record<string, string | undefined> = {
    [TABLE.indexes.byTenant.partitionKey]: listingPartitionOf(item),
    ...(item.sk === "TASK" && keyTasksKeys(item as unknown as Task)),
  };
  const keys = Object.fromEntries(
    Object.entries(expected).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && item[entry[0]] !== entry[1],
    ),
  );
  const task = item as unknown as Task;
  const uncounted =
    item.sk === "TASK" &&
    task.concurrency_key !== undefined &&
    !task.key_counted &&
    !TERMINAL_STATUSES.includes(task.status);
  const countOn = uncounted ? scopedConcurrencyKey(task) : undefined;
  return Object.keys(keys).length > 0 || countOn ? { keys, countOn } : undefined;
}

/** Writes what the item lacks while its version is the one read; false if it moved on meanwhile. */
async function bringUp(doc: DynamoDBDocumentClient, tableName: string, item: Item, behind: Behind) {
  const names: Record<string, string> = { "#version": "version" };
  const values: Record<string, unknown> = { ":seen": item.version };
  const sets = Object.entries(behind.keys).map(([name, value], i) => {
    names[`#k${i}`] = name;
    values[`:k${i}`] = value;
    return `#k${i} = :k${i}`;
  });
  if (behind.countOn) {
    values[":counted"] = true;
    values[":one"] = 1;
    sets.push("key_counted = :counted", "#version = #version + :one");
  }
  const update = {
    TableName: tableName,
    Key: { pk: item.pk, sk: item.sk },
    UpdateExpression: `SET ${sets.join(", ")}`,
    ConditionExpression: "#version = :seen",
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
  try {
    if (!behind.countOn) await doc.send(new UpdateCommand(update));
    else {
      const count = {
        TableName: tableName,
        Key: keyOpenTasksKey(behind.countOn),
        UpdateExpression: "ADD #open :one",
        ExpressionAttributeNames: { "#open": "open" },
        ExpressionAttributeValues: { ":one": 1 },
      };
      await doc.send(new TransactWriteCommand({ TransactItems: [{ Update: update }, { Update: count }] }));
    }
    return true;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException || err instanceof TransactionCanceledException) {
      return false;
    }
    throw err;
  }
}
