import { randomBytes } from "node:crypto";
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, inject } from "vitest";
import { DynamoStore } from "../../core/adapters/aws/dynamo-store.ts";
import { tableDefinition } from "../../core/adapters/aws/table-definition.ts";
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
