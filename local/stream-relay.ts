import { DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBStreamEvent } from "aws-lambda";

const POLL_MS = 200;

/**
 * Stands in for Lambda's DynamoDB Streams trigger, which DynamoDB Local lacks: it reads the table's
 * stream and hands each batch to the same handler, retrying a batch the handler fails.
 */
export function startStreamRelay(
  dynamodb: DynamoDBClient,
  tableName: string,
  handle: (event: DynamoDBStreamEvent) => Promise<unknown>,
  log: { warn: (message: string, extra: object) => void },
): { stop(): Promise<void> } {
  const streams = new DynamoDBStreamsClient({
    endpoint: dynamodb.config.endpoint,
    region: dynamodb.config.region,
    credentials: dynamodb.config.credentials,
  });
  let running = true;
  const loop = (async () => {
    const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
    const streamArn = Table?.LatestStreamArn;
    if (!streamArn) throw new Error(`table ${tableName} has no stream`);
    const iterators = new Map<string, string | undefined>();
    while (running) {
      try {
        const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
        for (const shard of StreamDescription?.Shards ?? []) {
          const id = shard.ShardId as string;
          if (iterators.has(id)) continue;
          const { ShardIterator } = await streams.send(
            new GetShardIteratorCommand({
              StreamArn: streamArn,
              ShardId: id,
              ShardIteratorType: "TRIM_HORIZON",
            }),
          );
          iterators.set(id, ShardIterator);
        }
        for (const [id, iterator] of iterators) {
          if (!iterator) continue;
          const out = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 100 }));
          if (out.Records?.length) await handle({ Records: out.Records } as unknown as DynamoDBStreamEvent);
          iterators.set(id, out.NextShardIterator);
        }
      } catch (err) {
        if (running) log.warn("event relay failed; retrying", { error: String(err) });
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop.catch(() => undefined);
    },
  };
}
