import { randomBytes } from "node:crypto";
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DynamoStore } from "../../adapters/aws/dynamo-store.ts";
import { tableDefinition } from "../../adapters/aws/table-definition.ts";
import { rateKey } from "../../adapters/table/keys.ts";
import { TABLE } from "../../core/names.ts";
import { describeStoreContract } from "../contract/store.contract.ts";

const { dynamodbEndpoint, region } = inject("emulators");
const client = new DynamoDBClient({
  endpoint: dynamodbEndpoint,
  region,
  credentials: { accessKeyId: "local", secretAccessKey: "local" },
});
// Without removeUndefinedValues, so a store that writes an undefined value fails here.
const doc = DynamoDBDocumentClient.from(client);
const tableName = `store-contract-${randomBytes(4).toString("hex")}`;

beforeAll(async () => {
  await client.send(new CreateTableCommand(tableDefinition(tableName)));
});

afterAll(async () => {
  await client.send(new DeleteTableCommand({ TableName: tableName }));
  client.destroy();
});

describeStoreContract("DynamoStore", async () => new DynamoStore(doc, tableName));

describe("DynamoStore rate windows", () => {
  it("keep their count in one item that DynamoDB's TTL removes", async () => {
    const store = new DynamoStore(doc, tableName);
    const counter = `requests#${randomBytes(4).toString("hex")}`;
    const windowStart = "2030-01-01T00:07:00.000Z";
    for (let i = 0; i < 3; i++) await store.takeRateToken(counter, windowStart, 2, 1_893_456_900);
    const { Item } = await doc.send(
      new GetCommand({ TableName: tableName, Key: rateKey(counter, windowStart) }),
    );
    expect(Item).toMatchObject({ count: 2, [TABLE.ttlAttribute]: 1_893_456_900 });
  });
});
