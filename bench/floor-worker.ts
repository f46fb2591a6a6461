/**
 * The floor's worker (bench/floor.ts), one process per pool: the least a worker can do for a task. It
 * receives up to its free slots, writes the start, runs the same instant CLI as the real workers, writes
 * the end and deletes the message. It reports each start and end to its parent (IPC).
 */
import { spawn } from "node:child_process";
import { DeleteMessageCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { taskKey } from "../adapters/table/keys.ts";
import { commandFor } from "../containers/worker/engines.ts";
import type { Tool } from "../core/fields.ts";
import { localClients } from "../local/aws-clients.ts";

export interface FloorWorkerEnv {
  FLOOR_ENDPOINTS: string;
  FLOOR_TABLE: string;
  FLOOR_QUEUE_URL: string;
  FLOOR_TOOL: Tool;
  FLOOR_SLOTS: string;
  FLOOR_WAIT_SECONDS: string;
}

export type FloorReport = { started: string } | { finished: string };

const env = process.env as unknown as FloorWorkerEnv;
const { doc, sqs } = localClients(JSON.parse(env.FLOOR_ENDPOINTS));
const slots = Number(env.FLOOR_SLOTS);
const { command, args } = commandFor(env.FLOOR_TOOL, {
  prompt: "benchmark task",
  allowDangerousFlags: false,
});
const report = (message: FloorReport) => process.send?.(message);

const mark = (uuid: string, field: "start_time" | "end_time", status: string) =>
  doc.send(
    new UpdateCommand({
      TableName: env.FLOOR_TABLE,
      Key: taskKey(uuid),
      UpdateExpression: "SET #status = :status, #time = :time",
      ExpressionAttributeNames: { "#status": "status", "#time": field },
      ExpressionAttributeValues: { ":status": status, ":time": new Date().toISOString() },
    }),
  );

/** Runs the CLI to its end, reading all it writes (as the real worker does). */
const runCli = () =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.resume();
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", () => resolve());
  });

async function run(uuid: string, receiptHandle: string) {
  await mark(uuid, "start_time", "running");
  report({ started: uuid });
  await runCli();
  await mark(uuid, "end_time", "succeeded");
  await sqs.send(new DeleteMessageCommand({ QueueUrl: env.FLOOR_QUEUE_URL, ReceiptHandle: receiptHandle }));
  report({ finished: uuid });
}

let running = 0;
process.on("disconnect", () => process.exit(0));
for (;;) {
  if (running >= slots) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    continue;
  }
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: env.FLOOR_QUEUE_URL,
      MaxNumberOfMessages: Math.min(10, slots - running),
      WaitTimeSeconds: Number(env.FLOOR_WAIT_SECONDS),
    }),
  );
  for (const message of Messages) {
    running++;
    run(message.Body as string, message.ReceiptHandle as string)
      .catch((err: unknown) => console.error("floor worker:", err))
      .finally(() => running--);
  }
}
