import { randomBytes, randomUUID } from "node:crypto";
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DynamoStore } from "../../adapters/aws/dynamo-store.ts";
import { tableDefinition } from "../../adapters/aws/table-definition.ts";
import { eventLogItem, rateKey } from "../../adapters/table/keys.ts";
import { type DomainEvent, type EventType, eventId } from "../../core/events.ts";
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

describe("DynamoStore event log", () => {
  it("reads the older layout (one event per item) in order beside change items", async () => {
    const store = new DynamoStore(doc, tableName);
    const uuid = randomUUID();
    const event = (minute: number, index: number, type: EventType): DomainEvent => ({
      id: eventId(`2030-01-01T00:0${minute}:00.000Z#00000000${minute}`, index),
      type,
      time: `2030-01-01T00:0${minute}:00.000Z`,
      tenant: "t",
      pool: "p",
      status: type.split(".")[1] as string,
      task_uuid: uuid,
    });
    const older = [event(1, 0, "task.created"), event(1, 1, "task.dispatched")];
    for (const e of older) {
      await doc.send(
        new PutCommand({ TableName: tableName, Item: { ...e, pk: `TASK#${uuid}`, sk: `EVENT#${e.id}` } }),
      );
    }
    const newer = [event(2, 0, "run.started"), event(2, 1, "task.running")];
    await doc.send(new PutCommand({ TableName: tableName, Item: eventLogItem(newer) }));
    const first = await store.listEvents(uuid, 1);
    const rest = await store.listEvents(uuid, 10, first.nextCursor);
    expect([...first.items, ...rest.items]).toEqual([...older, ...newer]);
    expect(rest.total).toBe(4);
    expect(rest.nextCursor).toBeUndefined();
  });
});
