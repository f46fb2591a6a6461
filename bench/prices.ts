/**
 * us-east-1 on-demand list prices, in USD, used to price one task's requests. Free tiers are ignored.
 * Transcribed by hand from the AWS pricing pages named in `source` (not fetched at run time): check them
 * before relying on a figure, and update `as_of` with any change.
 */
export const PRICES = {
  as_of: "2026-11-27",
  region: "us-east-1",
  note:
    "List prices as published on the AWS pricing pages (DynamoDB on-demand after the 2024-11-01 cut); " +
    "first pricing tier of each service; free tiers and data transfer ignored.",
  apiGatewayRest: {
    usd_per_million_requests: 3.5,
    source: "https://aws.amazon.com/api-gateway/pricing/ (REST APIs, first 333 million requests/month)",
  },
  lambda: {
    usd_per_million_requests: 0.2,
    usd_per_gb_second_arm: 0.0000133334,
    memory_mb: 256,
    source: "https://aws.amazon.com/lambda/pricing/ (Arm, first 7.5 billion GB-seconds/month)",
  },
  dynamodb: {
    usd_per_million_wru: 0.625,
    usd_per_million_rru: 0.125,
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/ (Standard table class)",
  },
  sqsFifo: {
    usd_per_million_requests: 0.5,
    source: "https://aws.amazon.com/sqs/pricing/ (FIFO queues; each 64 KB chunk is one request)",
  },
  sqsStandard: {
    usd_per_million_requests: 0.4,
    source: "https://aws.amazon.com/sqs/pricing/ (standard queues: the callback queue)",
  },
  sns: {
    usd_per_million_publishes: 0.5,
    source: "https://aws.amazon.com/sns/pricing/ (standard topics; deliveries to SQS are free)",
  },
  s3: {
    usd_per_million_put: 5,
    usd_per_million_get: 0.4,
    source: "https://aws.amazon.com/s3/pricing/ (S3 Standard: PUT, COPY, POST, LIST; GET, SELECT)",
  },
} as const;
