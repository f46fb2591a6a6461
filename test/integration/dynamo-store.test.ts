import { randomBytes, randomUUID } from "node:crypto";
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DynamoStore } from "../../adapters/aws/dynamo-store.ts";
import { backfillTable } from "../../adapters/aws/table-backfill.ts";
import { tableDefinition } from "../../adapters/aws/table-definition.ts";
import { eventLogItem, rateKey, runItem, taskItem } from "../../adapters/table/keys.ts";
import { type DomainEvent, type EventType, eventId } from "../../core/events.ts";
import { TABLE } from "../../core/names.ts";
import type { Run, Task } from "../../core/records.ts";
import type { LocalClients } from "../../local/aws-clients.ts";
import { addMissingIndexes } from "../../local/resources.ts";
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
  it("keep a tenant's counts in one item that DynamoDB's TTL removes", async () => {
    const store = new DynamoStore(doc, tableName);
    const tenant = randomBytes(4).toString("hex");
    const windowStart = "2030-01-01T00:07:00.000Z";
    const limits = { requests: 5, submissions: 2 };
    for (let i = 0; i < 3; i++) await store.takeRateTokens(tenant, windowStart, limits, 1_893_456_900);
    await store.takeRateTokens(tenant, windowStart, { requests: 5 }, 1_893_456_900);
    const { Item } = await doc.send(
      new GetCommand({ TableName: tableName, Key: rateKey(tenant, windowStart) }),
    );
    expect(Item).toMatchObject({ requests: 3, submissions: 2, [TABLE.ttlAttribute]: 1_893_456_900 });
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

describe("the listing-shard backfill", () => {
  it("moves tasks and runs written by the unsharded layout onto their shards, once, and they list again", async () => {
    const table = `backfill-${randomBytes(4).toString("hex")}`;
    await client.send(new CreateTableCommand(tableDefinition(table)));
    try {
      const store = new DynamoStore(doc, table);
      const tenant = `t-${randomBytes(4).toString("hex")}`;
      const base = {
        version: 1,
        tenant,
        namespace: "default",
        tags: {},
        tool: "claude" as const,
        prompt: "p",
      };
      const tasks: Task[] = Array.from({ length: 12 }, (_, i) => ({
        ...base,
        uuid: randomUUID(),
        input_files: [],
        output_files: [],
        pool: "p",
        priority: 5,
        status: "succeeded",
        attempt: 1,
        max_attempts: 3,
        occurrence: 0,
        timeout: 60,
        create_time: `2030-01-01T00:${String(i).padStart(2, "0")}:00.000Z`,
        update_time: "2030-01-01T01:00:00.000Z",
      }));
      const runs: Run[] = tasks.map((task) => ({
        run_id: `${task.uuid}-r1`,
        version: 1,
        task_uuid: task.uuid,
        tenant,
        pool: "p",
        attempt: 1,
        occurrence: 0,
        status: "succeeded",
        tags: {},
        create_time: task.create_time,
        update_time: task.update_time,
      }));
      // The older layout: one by-tenant partition per tenant and kind.
      for (const task of tasks) {
        await doc.send(
          new PutCommand({ TableName: table, Item: { ...taskItem(task), gsi1pk: `T#${tenant}#TASK` } }),
        );
      }
      for (const run of runs) {
        await doc.send(
          new PutCommand({ TableName: table, Item: { ...runItem(run), gsi1pk: `T#${tenant}#RUN` } }),
        );
      }
      expect((await store.listTasks({ tenant, size: 100 })).total).toBe(0);

      expect(await backfillTable(doc, table)).toEqual({ scanned: 24, moved: 24, counted: 0 });
      expect(await backfillTable(doc, table)).toEqual({ scanned: 24, moved: 0, counted: 0 });
      const listed = await store.listTasks({ tenant, size: 100 });
      expect(listed.items).toEqual([...tasks].reverse());
      expect((await store.listRuns({ tenant, size: 100 })).total).toBe(12);
    } finally {
      await client.send(new DeleteTableCommand({ TableName: table }));
    }
  });
});

describe("the by-key backfill", () => {
  it("indexes the keyed tasks of a table without the by-key index and counts the open ones on their key", async () => {
    const table = `backfill-${randomBytes(4).toString("hex")}`;
    const current = tableDefinition(table);
    const byKey = TABLE.indexes.byKey;
    const older = {
      ...current,
      GlobalSecondaryIndexes: current.GlobalSecondaryIndexes?.filter((i) => i.IndexName !== byKey.name),
      AttributeDefinitions: current.AttributeDefinitions?.filter(
        (a) => a.AttributeName !== byKey.partitionKey && a.AttributeName !== byKey.sortKey,
      ),
    };
    await client.send(new CreateTableCommand(older));
    try {
      const [tenant, account] = [`t-${randomBytes(4).toString("hex")}`, "acct-1"];
      const task = (status: Task["status"], minute: number): Task => ({
        uuid: randomUUID(),
        version: 3,
        tenant,
        namespace: "default",
        tags: {},
        tool: "claude",
        prompt: "p",
        input_files: [],
        output_files: [],
        pool: "p",
        priority: 5,
        status,
        attempt: 1,
        max_attempts: 3,
        occurrence: 1,
        timeout: 60,
        concurrency_key: account,
        create_time: `2030-01-01T00:0${minute}:00.000Z`,
        update_time: "2030-01-01T01:00:00.000Z",
      });
      const [ended, open] = [task("succeeded", 1), task("running", 2)];
      for (const t of [ended, open]) {
        const { gsi4pk: _pk, gsi4sk: _sk, ...item } = taskItem(t);
        await doc.send(new PutCommand({ TableName: table, Item: item }));
      }
      await addMissingIndexes({ dynamodb: client, doc } as LocalClients, table);
      expect(await backfillTable(doc, table)).toEqual({ scanned: 2, moved: 2, counted: 1 });
      expect(await backfillTable(doc, table)).toEqual({ scanned: 2, moved: 0, counted: 0 });

      const store = new DynamoStore(doc, table);
      const counted = { ...open, version: 4, key_counted: true };
      expect(await store.listTasks({ tenant, concurrencyKey: account, size: 10 })).toEqual({
        items: [counted, ended],
        total: 2,
      });
      // The open task holds its key: an exclusive one is refused until it ends.
      const exclusive = { ...task("queued", 3), version: 1, exclusive: true, key_counted: true };
      const enter = { key: `${tenant}#${account}`, delta: 1 as const, exclusive: true };
      await expect(store.commit({ tasks: [{ next: exclusive }], keyOpen: enter })).rejects.toMatchObject({
        reason: "key_exclusive",
      });
      await store.commit({
        tasks: [{ next: { ...counted, version: 5, status: "succeeded" }, expectVersion: 4 }],
        keyOpen: { ...enter, delta: -1, exclusive: false },
      });
      await store.commit({ tasks: [{ next: exclusive }], keyOpen: enter });
    } finally {
      await client.send(new DeleteTableCommand({ TableName: table }));
    }
  });
});
