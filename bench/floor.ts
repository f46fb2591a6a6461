/**
 * The floor: the six requests a task cannot do without, done by the least code, on the same emulators and
 * machine as the stack it is compared with. A plain HTTP server answers a submit with one write (the task)
 * and one SQS send; a worker process per pool (bench/floor-worker.ts) receives, writes the start, runs the
 * same instant CLI, writes the end and deletes the message. No auth, limits, events, leases or admission.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { CreateTableCommand, DeleteTableCommand, waitUntilTableExists } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, DeleteQueueCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoStore } from "../adapters/aws/dynamo-store.ts";
import { tableDefinition } from "../adapters/aws/table-definition.ts";
import { taskKey } from "../adapters/table/keys.ts";
import type { CliPool } from "../core/config.ts";
import { type LocalEndpoints, localClients } from "../local/aws-clients.ts";
import { POOL_QUEUE_ATTRIBUTES } from "../local/resources.ts";
import type { Driver } from "./driver.ts";
import type { FloorReport, FloorWorkerEnv } from "./floor-worker.ts";

export interface Floor {
  driver: Pick<Driver, "stack" | "store" | "backlog" | "finished">;
  stop(): Promise<void>;
}

export async function startFloor(options: {
  endpoints: LocalEndpoints;
  pools: CliPool[];
  /** Put first on the workers' PATH: the instant CLIs. */
  path: string;
  waitSeconds: number;
}): Promise<Floor> {
  const { endpoints, pools } = options;
  const { dynamodb, doc, sqs } = localClients(endpoints);
  const id = randomBytes(4).toString("hex");
  const table = `floor-${id}`;
  await dynamodb.send(new CreateTableCommand(tableDefinition(table)));
  await waitUntilTableExists(
    { client: dynamodb, minDelay: 1, maxDelay: 2, maxWaitTime: 60 },
    { TableName: table },
  );
  const queues = new Map<string, string>();
  for (const pool of pools) {
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: `floor-${id}-${pool.name}.fifo`,
        Attributes: POOL_QUEUE_ATTRIBUTES,
      }),
    );
    queues.set(pool.name, QueueUrl as string);
  }

  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const { pool, prompt } = JSON.parse(body) as { pool: string; prompt: string };
    const { tool } = pools.find((p) => p.name === pool) as CliPool;
    const uuid = randomUUID();
    const createTime = new Date().toISOString();
    // Counted before the send: the worker may report the start before the send's answer comes back.
    submitted[pool] = (submitted[pool] ?? 0) + 1;
    await doc.send(
      new PutCommand({
        TableName: table,
        Item: { ...taskKey(uuid), uuid, tool, prompt, status: "dispatched", create_time: createTime },
      }),
    );
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.get(pool),
        MessageBody: uuid,
        MessageGroupId: uuid,
        MessageDeduplicationId: uuid,
      }),
    );
    res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ data: { uuid } }));
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const submitted: Record<string, number> = {};
  const started: Record<string, number> = {};
  let finished = 0;
  const workers = new Map<string, ChildProcess>();
  for (const pool of pools) {
    const env: FloorWorkerEnv = {
      FLOOR_ENDPOINTS: JSON.stringify(endpoints),
      FLOOR_TABLE: table,
      FLOOR_QUEUE_URL: queues.get(pool.name) as string,
      FLOOR_TOOL: pool.tool,
      FLOOR_SLOTS: String(pool.worker.slots),
      FLOOR_WAIT_SECONDS: String(options.waitSeconds),
    };
    const child = fork(resolve(import.meta.dirname, "floor-worker.ts"), {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, ...env, PATH: `${options.path}:${process.env.PATH}` },
    });
    child.on("message", (message: FloorReport) => {
      if ("started" in message) started[pool.name] = (started[pool.name] ?? 0) + 1;
      else finished++;
    });
    workers.set(pool.name, child);
  }

  return {
    driver: {
      stack: { url, workerPid: (pool) => workers.get(pool)?.pid },
      store: new DynamoStore(doc, table),
      backlog: async (pool) => (submitted[pool] ?? 0) - (started[pool] ?? 0),
      finished: async () => ({ succeeded: finished, failed: 0 }),
    },
    stop: async () => {
      for (const child of workers.values()) child.kill("SIGKILL");
      await new Promise<void>((done) => server.close(() => done()));
      await dynamodb.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
      for (const queueUrl of queues.values()) {
        await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
      }
    },
  };
}
