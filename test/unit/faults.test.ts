import { describe, expect, it } from "vitest";
import { FaultInjector, type FaultRule, faultRulesFrom } from "../../local/faults.ts";

/** Sends `operation` requests of `service` through the injector's middleware; what each one came to. */
async function send(rules: FaultRule[], requests: { service: string; operation: string; input?: object }[]) {
  const applied: string[] = [];
  const injector = new FaultInjector(rules, () => 0.5);
  const outcomes: string[] = [];
  for (const [i, { service, operation, input = {} }] of requests.entries()) {
    const next = async () => {
      applied.push(`${operation}#${i}`);
      return { output: { $metadata: {} }, response: {} };
    };
    const handler = injector.middleware()(
      next as never,
      {
        clientName: `${service}Client`,
        commandName: `${operation}Command`,
      } as never,
    );
    outcomes.push(
      await handler({ input } as never).then(
        () => "ok",
        (err: { name: string }) => err.name,
      ),
    );
  }
  return { outcomes, applied };
}

describe("fault injection", () => {
  it("fails the matching requests by rule: service, operation, touched text, skip and count", async () => {
    const rule: FaultRule = {
      service: "DynamoDB",
      operation: "PutItem",
      touches: "POOL#",
      fault: "throttling",
      skip: 1,
      count: 2,
    };
    const put = (pk: string) => ({ service: "DynamoDB", operation: "PutItem", input: { Item: { pk } } });
    const { outcomes } = await send(
      [rule],
      [
        put("POOL#a"),
        put("TASK#b"),
        put("POOL#a"),
        { service: "SQS", operation: "PutItem" },
        put("POOL#a"),
        put("POOL#a"),
      ],
    );
    expect(outcomes).toEqual([
      "ok",
      "ok",
      "ProvisionedThroughputExceededException",
      "ok",
      "ProvisionedThroughputExceededException",
      "ok",
    ]);
  });

  it("applies a request before failing it when the fault comes after (a timeout that wrote)", async () => {
    const { outcomes, applied } = await send(
      [
        { service: "SQS", operation: "DeleteMessage", fault: "timeout", when: "after" },
        { service: "SQS", fault: "server" },
      ],
      [
        { service: "SQS", operation: "DeleteMessage" },
        { service: "SQS", operation: "SendMessage" },
      ],
    );
    expect(outcomes).toEqual(["TimeoutError", "InternalServerError"]);
    expect(applied).toEqual(["DeleteMessage#0"]);
  });

  it("injects by rate, and refuses a rule or crash point it does not know", async () => {
    const { outcomes } = await send(
      [
        { service: "SNS", fault: "conflict", rate: 0.4 },
        { service: "S3", fault: "server", rate: 0.6 },
      ],
      [
        { service: "SNS", operation: "PublishBatch" },
        { service: "S3", operation: "PutObject" },
      ],
    );
    // The random draw is 0.5: under 0.6, not under 0.4.
    expect(outcomes).toEqual(["ok", "InternalServerError"]);
    expect(() => faultRulesFrom({ SWITCHYARD_FAULTS: '[{"service":"SQS","fault":"gremlins"}]' })).toThrow();
    expect(() => faultRulesFrom({ SWITCHYARD_CRASH_AT: "nowhere" })).toThrow(/no crash point nowhere/);
    // A crash point's rules (after a claim: the delete of one message, or of a batch), each once.
    expect(faultRulesFrom({ SWITCHYARD_CRASH_AT: "after-claim" })).toEqual([
      { service: "SQS", operation: "DeleteMessage", fault: "crash", count: 1 },
      { service: "SQS", operation: "DeleteMessageBatch", fault: "crash", count: 1 },
    ]);
  });
});
