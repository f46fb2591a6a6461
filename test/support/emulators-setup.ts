import { resolve } from "node:path";
import type { TestProject } from "vitest/node";
import { ENV } from "../../core/names.ts";
import { startDynamoDbLocal } from "../../local/dynamodb-local.ts";
import { startFauxqsServer } from "../../local/fauxqs.ts";

/** vitest globalSetup: one DynamoDB Local and one fauxqs per test run, shared by every test file. */
export default async function setup(project: TestProject) {
  const dataDir = process.env[ENV.dataDir] ?? resolve(import.meta.dirname, "../../.data");
  const fauxqs = await startFauxqsServer();
  const dynamodb = await startDynamoDbLocal({ dataDir }).catch(async (err: unknown) => {
    await fauxqs.stop();
    throw err;
  });
  project.provide("emulators", {
    dynamodbEndpoint: dynamodb.endpoint,
    awsEndpoint: fauxqs.endpoint,
    region: "us-east-1",
  });
  return async () => {
    await Promise.all([dynamodb.stop(), fauxqs.stop()]);
  };
}
