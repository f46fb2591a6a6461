import { DynamoDBClient, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoStore } from "../../adapters/aws/dynamo-store.ts";
import { CommitConflict } from "../../core/ports.ts";

const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: "us-east-1" }));
const sent = mockClient(DynamoDBDocumentClient);
const store = new DynamoStore(doc, "table");
/** Two items, so the change goes out as one TransactWriteItems. */
const change = {
  release: { pool: "p" },
  queued: { tenant: "t", pool: "q", delta: 1 as const },
};
const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: "Transaction cancelled",
    $metadata: {},
    CancellationReasons: codes.map((Code) => ({ Code })),
  });

beforeEach(() => sent.reset());

describe("DynamoStore transactions", () => {
  it("sends a transaction again when another transaction held one of its items", async () => {
    sent
      .on(TransactWriteCommand)
      .rejectsOnce(cancelled("None", "TransactionConflict", "None"))
      .resolves({});
    await store.commit(change);
    const calls = sent.commandCalls(TransactWriteCommand);
    expect(calls).toHaveLength(2);
    expect(calls[1]?.args[0].input).toEqual(calls[0]?.args[0].input);
    expect(calls[0]?.args[0].input.TransactItems).toHaveLength(3);
  });

  it("answers a failed condition with its conflict at once, even beside a timing conflict", async () => {
    const change = {
      acquire: { pool: "p", maxConcurrency: 1, keyLimit: 1, now: "2026-01-01T00:00:00.000Z" },
      queued: { tenant: "t", pool: "p", delta: -1 as const },
    };
    sent.on(TransactWriteCommand).rejects(cancelled("ConditionalCheckFailed", "TransactionConflict"));
    await expect(store.commit({ ...change, release: { pool: "other" } })).rejects.toEqual(
      new CommitConflict("pool_closed"),
    );
    expect(sent.commandCalls(TransactWriteCommand)).toHaveLength(1);
  });

  it("gives up after five timing conflicts in a row", async () => {
    sent.on(TransactWriteCommand).rejects(cancelled("TransactionConflict", "None"));
    await expect(store.commit(change)).rejects.toBeInstanceOf(TransactionCanceledException);
    expect(sent.commandCalls(TransactWriteCommand)).toHaveLength(5);
  });
});
