import {
  type _Record,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "@aws-sdk/client-dynamodb-streams";

/** Where a stream batch lies, as Lambda's on-failure record names it: its shard, its first and last record. */
export interface StreamBatchInfo {
  streamArn: string;
  shardId: string;
  startSequenceNumber: string;
  endSequenceNumber: string;
}

/** Empty pages in a row after which the rest of a batch is taken as not there. */
const EMPTY_PAGES = 5;

/**
 * The records of a stream batch, read again from the table's stream (which keeps them 24 hours): from its
 * first sequence number to its last, in its shard. Past the 24 hours the stream refuses
 * (TrimmedDataAccessException), and the caller's message goes to its dead-letter queue.
 */
export async function readStreamBatch(
  streams: DynamoDBStreamsClient,
  batch: StreamBatchInfo,
): Promise<_Record[]> {
  const end = BigInt(batch.endSequenceNumber);
  const records: _Record[] = [];
  let { ShardIterator: iterator } = await streams.send(
    new GetShardIteratorCommand({
      StreamArn: batch.streamArn,
      ShardId: batch.shardId,
      ShardIteratorType: "AT_SEQUENCE_NUMBER",
      SequenceNumber: batch.startSequenceNumber,
    }),
  );
  for (let empty = 0; iterator && empty < EMPTY_PAGES; ) {
    const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
    for (const record of page.Records ?? []) {
      const sequence = BigInt(record.dynamodb?.SequenceNumber ?? "0");
      if (sequence > end) return records;
      records.push(record);
      if (sequence === end) return records;
    }
    empty = page.Records?.length ? 0 : empty + 1;
    iterator = page.NextShardIterator;
  }
  return records;
}
