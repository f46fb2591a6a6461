import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SNSClient } from "@aws-sdk/client-sns";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { S3_CLIENT_SETTINGS } from "../adapters/aws/s3-blobs.ts";

export interface LocalEndpoints {
  dynamodbEndpoint: string;
  /** fauxqs: SQS, SNS and S3 on one endpoint. */
  awsEndpoint: string;
  region: string;
}

export type LocalClients = ReturnType<typeof localClients>;

/** AWS SDK clients pointed at the local emulators. */
export function localClients({ dynamodbEndpoint, awsEndpoint, region }: LocalEndpoints) {
  // DynamoDB Local rejects access keys that are not letters and digits.
  const base = { region, credentials: { accessKeyId: "local", secretAccessKey: "local" } };
  const dynamodb = new DynamoDBClient({ ...base, endpoint: dynamodbEndpoint });
  return {
    dynamodb,
    doc: DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } }),
    // fauxqs queue URLs name `sqs.<region>.localhost`, which does not resolve: never send to them.
    sqs: new SQSClient({ ...base, endpoint: awsEndpoint, useQueueUrlAsEndpoint: false }),
    sns: new SNSClient({ ...base, endpoint: awsEndpoint }),
    s3: new S3Client({ ...base, endpoint: awsEndpoint, forcePathStyle: true, ...S3_CLIENT_SETTINGS }),
  };
}
