import type { CreateTableCommandInput } from "@aws-sdk/client-dynamodb";
import { TABLE } from "../../core/names.ts";

/** The single table as the local stack creates it (the CDK stack builds the same from TABLE). */
export function tableDefinition(tableName: string): CreateTableCommandInput {
  const indexes = Object.values(TABLE.indexes);
  const keySchema = (partitionKey: string, sortKey: string) => [
    { AttributeName: partitionKey, KeyType: "HASH" as const },
    { AttributeName: sortKey, KeyType: "RANGE" as const },
  ];
  const attributes = [
    TABLE.partitionKey,
    TABLE.sortKey,
    ...indexes.flatMap((i) => [i.partitionKey, i.sortKey]),
  ];
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST",
    // The events relay reads new event items from the stream (an outbox); see functions/events-relay.ts.
    StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_IMAGE" },
    AttributeDefinitions: attributes.map((AttributeName) => ({ AttributeName, AttributeType: "S" })),
    KeySchema: keySchema(TABLE.partitionKey, TABLE.sortKey),
    GlobalSecondaryIndexes: indexes.map((index) => ({
      IndexName: index.name,
      KeySchema: keySchema(index.partitionKey, index.sortKey),
      Projection: { ProjectionType: "ALL" },
    })),
  };
}
