/**
 * Moves the task and run items written before the by-tenant index was sharded (`T#<tenant>#TASK`, one
 * partition a tenant) to their listing shard (`T#<tenant>#TASK#<n>`): a scan in parallel segments, and per
 * item one conditional update of `gsi1pk`, so that a transition written meanwhile (which keys its item
 * anew) is never undone. Safe to run again: moved items are left alone.
 */
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { type DynamoDBDocumentClient, paginateScan, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { TABLE } from "../../core/names.ts";
import { type Item, listingPartitionOf, TASK_PARTITION } from "../table/keys.ts";

export interface BackfillReport {
  scanned: number;
  moved: number;
}

export async function backfillListingShards(
  doc: DynamoDBDocumentClient,
  tableName: string,
  segments = 4,
): Promise<BackfillReport> {
  const report: BackfillReport = { scanned: 0, moved: 0 };
  const { partitionKey: gsi1pk } = TABLE.indexes.byTenant;
  const segment = async (Segment: number) => {
    const pages = paginateScan(
      { client: doc },
      {
        TableName: tableName,
        Segment,
        TotalSegments: segments,
        FilterExpression: "sk = :task OR begins_with(sk, :run)",
        ProjectionExpression: "pk, sk, #gsi1pk, tenant, #uuid, run_id",
        ExpressionAttributeNames: { "#gsi1pk": gsi1pk, "#uuid": "uuid" },
        ExpressionAttributeValues: { ":task": "TASK", ":run": TASK_PARTITION.runs },
      },
    );
    for await (const page of pages) {
      for (const item of (page.Items ?? []) as Item[]) {
        report.scanned++;
        const partition = listingPartitionOf(item);
        if (partition === undefined || item[gsi1pk] === partition) continue;
        if (await moveItem(doc, tableName, item, partition)) report.moved++;
      }
    }
  };
  await Promise.all(Array.from({ length: segments }, (_, i) => segment(i)));
  return report;
}

/** Sets the item's by-tenant partition, only while it still has the one the scan saw. */
async function moveItem(doc: DynamoDBDocumentClient, tableName: string, item: Item, partition: string) {
  try {
    await doc.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { pk: item.pk, sk: item.sk },
        UpdateExpression: "SET #gsi1pk = :partition",
        ConditionExpression: "#gsi1pk = :seen",
        ExpressionAttributeNames: { "#gsi1pk": TABLE.indexes.byTenant.partitionKey },
        ExpressionAttributeValues: {
          ":partition": partition,
          ":seen": item[TABLE.indexes.byTenant.partitionKey],
        },
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) return false;
    throw err;
  }
}
