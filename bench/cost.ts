/** Prices one task's AWS requests with the dated list prices in bench/prices.ts. */

import { PRICES } from "./prices.ts";
import type { RequestCount } from "./request-counter.ts";

/** The fewest requests any design of this shape needs: write at submit, start and end; SQS send, receive, delete. */
export const FLOOR = {
  requests: 6,
  dynamodbWrites: 3,
  sqsRequests: 3,
  description: "1 DynamoDB write at submit, 1 at start, 1 at end; SQS send, receive and delete",
} as const;

export interface TaskCost {
  /** USD per million tasks, by line item. */
  lines: Record<string, number>;
  total: number;
}

const perMillion = (usdPerMillion: number, perTask: number) => usdPerMillion * perTask;

/** Lambda: one invocation billed for `ms` (rounded up to the millisecond) at the configured memory. */
const lambdaUsdPerMillion = (invocations: number, ms: number) =>
  perMillion(PRICES.lambda.usd_per_million_requests, invocations) +
  invocations *
    1e6 *
    (Math.ceil(ms) / 1000) *
    (PRICES.lambda.memory_mb / 1024) *
    PRICES.lambda.usd_per_gb_second_arm;

export interface TaskUsage {
  /** Client calls through API Gateway to a Lambda, each billed for `lambdaMs`. */
  apiCalls: number;
  lambdaMs: number;
  /** Invocations of the batch functions (events relay, callbacks), billed per request only. */
  batchInvocations: number;
  /** SNS messages published (each message of a batch is billed). */
  snsMessages: number;
}

/**
 * `perTask`: the requests of one task (DynamoDB with its capacity units), each with the part that sent it
 * (the callback function's queue is a standard queue; the pool queues are FIFO).
 */
export function priceTask(perTask: (RequestCount & { where: string })[], usage: TaskUsage): TaskCost {
  const { apiCalls, lambdaMs, batchInvocations, snsMessages } = usage;
  let rcu = 0;
  let wcu = 0;
  let sqs = 0;
  let sqsStandard = 0;
  let s3Put = 0;
  let s3Get = 0;
  for (const c of perTask) {
    if (c.service === "DynamoDB") {
      rcu += c.rcu;
      wcu += c.wcu;
    } else if (c.service === "SQS" && c.where === "callbacks") sqsStandard += c.requests;
    else if (c.service === "SQS") sqs += c.requests;
    else if (c.service === "S3" && c.operation === "GetObject") s3Get += c.requests;
    else if (c.service === "S3") s3Put += c.requests;
  }
  const lines = {
    "API Gateway (REST)": perMillion(PRICES.apiGatewayRest.usd_per_million_requests, apiCalls),
    "Lambda (requests + duration)": lambdaUsdPerMillion(apiCalls, lambdaMs),
    "Lambda (events relay, callbacks)": perMillion(PRICES.lambda.usd_per_million_requests, batchInvocations),
    "DynamoDB (RRU)": perMillion(PRICES.dynamodb.usd_per_million_rru, rcu),
    "DynamoDB (WRU)": perMillion(PRICES.dynamodb.usd_per_million_wru, wcu),
    "SQS FIFO (pool queue)": perMillion(PRICES.sqsFifo.usd_per_million_requests, sqs),
    "SQS standard (callback queue)": perMillion(PRICES.sqsStandard.usd_per_million_requests, sqsStandard),
    "SNS (event messages)": perMillion(PRICES.sns.usd_per_million_publishes, snsMessages),
    "S3 (PUT)": perMillion(PRICES.s3.usd_per_million_put, s3Put),
    "S3 (GET)": perMillion(PRICES.s3.usd_per_million_get, s3Get),
  };
  return { lines, total: Object.values(lines).reduce((a, b) => a + b, 0) };
}

/** The floor priced the same way: one API call, 3 single-item writes of at most 1 KB, 3 SQS requests. */
export function priceFloor(lambdaMs: number): TaskCost {
  const lines = {
    "API Gateway (REST)": perMillion(PRICES.apiGatewayRest.usd_per_million_requests, 1),
    "Lambda (requests + duration)": lambdaUsdPerMillion(1, lambdaMs),
    "DynamoDB (WRU)": perMillion(PRICES.dynamodb.usd_per_million_wru, FLOOR.dynamodbWrites),
    "SQS FIFO": perMillion(PRICES.sqsFifo.usd_per_million_requests, FLOOR.sqsRequests),
  };
  return { lines, total: Object.values(lines).reduce((a, b) => a + b, 0) };
}
