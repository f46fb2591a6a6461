import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";

// Metrics read their settings when built: enable them for this file's instances (npm test disables them).
process.env.POWERTOOLS_METRICS_DISABLED = "false";
process.env.POWERTOOLS_METRICS_NAMESPACE = "Switchyard";
let observability: typeof import("../../functions/_shared/observability.ts").observability;
beforeAll(async () => {
  ({ observability } = await import("../../functions/_shared/observability.ts"));
});
afterEach(() => vi.restoreAllMocks());

const context = {
  functionName: "switchyard-test",
  functionVersion: "$LATEST",
  awsRequestId: "request-1",
  invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:switchyard-test",
  memoryLimitInMB: "256",
} as Context;

/** What the invocation printed as CloudWatch embedded metric format: metric name → value. */
async function emfOf(run: () => Promise<unknown>) {
  const lines: string[] = [];
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  await run();
  vi.restoreAllMocks();
  const emf = lines.flatMap((line) => line.split("\n")).filter((line) => line.includes('"_aws"'));
  // Powertools' own cold-start metric is left out: what is checked here is what the functions count.
  return emf.flatMap((line) => {
    const parsed = JSON.parse(line);
    const [directive] = parsed._aws.CloudWatchMetrics;
    const names = (directive.Metrics as { Name: string }[])
      .map((m) => m.Name)
      .filter((n) => n !== "ColdStart");
    return names.length
      ? [
          {
            namespace: directive.Namespace as string,
            values: Object.fromEntries(names.map((n) => [n, parsed[n]])),
          },
        ]
      : [];
  });
}

describe("function observability", () => {
  it("publishes each invocation's counts (zeros left out) as EMF in the Switchyard namespace", async () => {
    const { count, middlewares } = observability("switchyard-test");
    const handler = middy()
      .use(middlewares)
      .handler(async () => {
        count({ TasksSubmitted: 2, SubmissionsReplayed: 0 });
      });
    const first = await emfOf(() => handler({}, context));
    expect(first).toEqual([{ namespace: "Switchyard", values: { TasksSubmitted: 2 } }]);
    const second = await emfOf(() => handler({}, context));
    expect(second).toEqual([{ namespace: "Switchyard", values: { TasksSubmitted: 2 } }]);
    // An invocation that counts nothing prints no metric line at all.
    const empty = middy()
      .use(observability("switchyard-quiet").middlewares)
      .handler(async () => undefined);
    expect(await emfOf(() => empty({}, context))).toEqual([]);
  });
});
