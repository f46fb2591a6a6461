import { Match, Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { RUN_END_TYPES } from "../../core/events.ts";
import { CALLBACK_MAX_RECEIVES, ENV } from "../../core/names.ts";
import type { SwitchyardFunction } from "../../infra/constructs/switchyard-function.ts";
import { logicalId, synthSwitchyard, testConfig } from "./fixture.ts";

type Props = Record<string, unknown>;
type Resource = { Type: string; Properties: Props };

const { stateful, stateless } = synthSwitchyard();
const compute = Template.fromStack(stateless);
const resources = compute.toJSON().Resources as Record<string, Resource>;
/** A value the test needs, or a clear failure. */
function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`missing: ${what}`);
  return value;
}
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
/** The statements a role's policy grants, as JSON text. */
const policyOf = (roleId: string) =>
  JSON.stringify(
    ofType("AWS::IAM::Policy").find(
      ([, p]) => JSON.stringify(p.Properties.Roles) === `[{"Ref":"${roleId}"}]`,
    )?.[1]?.Properties.PolicyDocument ?? "no policy",
  );
const alarms = ofType("AWS::CloudWatch::Alarm").map(([, a]) => a.Properties);
const alarmTopicId = logicalId(stateless.alarms.topic);
/** The alarms that notify the alarm topic (not the scaling alarms). */
const notifying = alarms.filter((a) => JSON.stringify(a.AlarmActions) === `[{"Ref":"${alarmTopicId}"}]`);
const onMetric = (metricName: string, dimension: unknown) =>
  notifying.filter(
    (a) => a.MetricName === metricName && JSON.stringify(a.Dimensions).includes(JSON.stringify(dimension)),
  );

describe("API stage throttling", () => {
  const stageThrottle = (template: Template, rate: number, burst: number) =>
    template.hasResourceProperties("AWS::ApiGateway::Stage", {
      MethodSettings: [
        Match.objectLike({
          HttpMethod: "*",
          ResourcePath: "/*",
          ThrottlingRateLimit: rate,
          ThrottlingBurstLimit: burst,
        }),
      ],
    });

  it("throttles the whole stage at 1,250 requests a second (1,000 at 80 %) unless the config says otherwise", () => {
    stageThrottle(compute, 1250, 2500);
    const configText = `api: { throttle: { rate_per_second: 250, burst: 400 } }\npools: [{ name: a, tool: claude, account: a, max_concurrency: 1 }]`;
    stageThrottle(Template.fromStack(synthSwitchyard({ configText }).stateless), 250, 400);
    // No usage plans or API Gateway keys: Switchyard's keys are checked by the handlers.
    compute.resourceCountIs("AWS::ApiGateway::UsagePlan", 0);
    compute.resourceCountIs("AWS::ApiGateway::ApiKey", 0);
  });
});

describe("alarms", () => {
  it("alarms on any message in each pool's DLQ", () => {
    for (const pool of testConfig.pools) {
      const dlq = stateless.queues.dlqs.get(pool.name);
      const dimension = {
        Name: "QueueName",
        Value: { "Fn::GetAtt": [logicalId(must(dlq, `${pool.name} DLQ`)), "QueueName"] },
      };
      const found = onMetric("ApproximateNumberOfMessagesVisible", dimension);
      expect(found, pool.name).toHaveLength(1);
      expect(found[0]).toMatchObject({ ComparisonOperator: "GreaterThanThreshold", Threshold: 0 });
    }
  });

  it("alarms when the oldest message of a pool queue waits over 15 minutes", () => {
    for (const pool of testConfig.pools) {
      const queue = stateless.queues.queues.get(pool.name);
      const dimension = {
        Name: "QueueName",
        Value: { "Fn::GetAtt": [logicalId(must(queue, `${pool.name} queue`)), "QueueName"] },
      };
      const found = onMetric("ApproximateAgeOfOldestMessage", dimension);
      expect(found, pool.name).toHaveLength(1);
      expect(found[0]).toMatchObject({
        ComparisonOperator: "GreaterThanThreshold",
        Threshold: 900,
        Statistic: "Maximum",
      });
    }
  });

  it("alarms on every pool's SLA missed for 3 minutes, from the tick's SlaMissed metric", () => {
    for (const pool of testConfig.pools) {
      const found = notifying.filter(
        (a) => a.MetricName === "SlaMissed" && JSON.stringify(a.Dimensions).includes(`"${pool.name}"`),
      );
      expect(found, pool.name).toHaveLength(1);
      expect(found[0]).toMatchObject({
        Namespace: "Switchyard",
        Dimensions: expect.arrayContaining([
          { Name: "Pool", Value: pool.name },
          { Name: "service", Value: "switchyard-tick" },
        ]),
        Period: 60,
        EvaluationPeriods: 3,
        Statistic: "Maximum",
        ComparisonOperator: "GreaterThanThreshold",
        Threshold: 0,
        TreatMissingData: "notBreaching",
      });
    }
  });

  it("alarms on any error of every function in the stack", () => {
    const functionIds = ofType("AWS::Lambda::Function").map(([id]) => id);
    expect(functionIds.length).toBe(stateless.functions.size);
    for (const id of functionIds) {
      const found = onMetric("Errors", { Name: "FunctionName", Value: { Ref: id } });
      expect(found, id).toHaveLength(1);
      expect(found[0]).toMatchObject({
        ComparisonOperator: "GreaterThanThreshold",
        Threshold: 0,
        Statistic: "Sum",
      });
    }
  });

  it("alarms on the callbacks DLQ, on the events the relay and its replay both gave up on, and on undelivered pod ends", () => {
    for (const queue of [stateless.callbacks.dlq, stateless.relay.unreplayed, stateless.pods?.undelivered]) {
      if (!queue) throw new Error("the test config has a container pool: its pods are deployed");
      const dimension = { Name: "QueueName", Value: { "Fn::GetAtt": [logicalId(queue), "QueueName"] } };
      expect(onMetric("ApproximateNumberOfMessagesVisible", dimension), queue.node.path).toHaveLength(1);
    }
  });

  it("notifies one TLS-only alarm topic that CloudWatch may publish to, and outputs its ARN", () => {
    // Per pool: its dead letters, its oldest message, its SLA; per function its errors; and the dead letters
    // of the callbacks, the workflows, the events relay and the pod events.
    expect(notifying).toHaveLength(3 * testConfig.pools.length + stateless.functions.size + 4);
    compute.hasResourceProperties("AWS::SNS::TopicPolicy", {
      Topics: [{ Ref: alarmTopicId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),

          Match.objectLike({
            Effect: "Allow",
            Action: "sns:Publish",
            Principal: { Service: "cloudwatch.amazonaws.com" },
            Condition: { StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } } },
          }),
        ]),
      },
    });
    compute.hasOutput("AlarmTopicArn", { Value: { Ref: alarmTopicId } });
  });
});

describe("events relay", () => {
  it("turns on the table's stream with new images", () => {
    Template.fromStack(stateful).hasResourceProperties("AWS::DynamoDB::GlobalTable", {
      StreamSpecification: { StreamViewType: "NEW_IMAGE" },
    });
  });

  it("feeds the relay only inserted event items (sk EVENT#...), 100 at a time, with a failure queue", () => {
    const relay = must(stateless.functions.get("EventsRelay"), "EventsRelay function");
    const [[, mapping] = []] = ofType("AWS::Lambda::EventSourceMapping").filter(
      ([, m]) => JSON.stringify(m.Properties.FunctionName) === `{"Ref":"${logicalId(relay)}"}`,
    );
    expect(mapping?.Properties).toMatchObject({
      BatchSize: 100,
      StartingPosition: "TRIM_HORIZON",
      EventSourceArn: {
        "Fn::ImportValue": `SwitchyardStateful:ExportsOutputFnGetAtt${logicalId(stateful.table)}StreamArnB270E65B`,
      },
      DestinationConfig: {
        OnFailure: { Destination: { "Fn::GetAtt": [logicalId(stateless.relay.failures), "Arn"] } },
      },
    });
    const { Filters: filters } = must(mapping, "relay event source mapping").Properties.FilterCriteria as {
      Filters: { Pattern: string }[];
    };
    expect(filters.map((f) => JSON.parse(f.Pattern))).toEqual([
      { eventName: ["INSERT"], dynamodb: { NewImage: { sk: { S: [{ prefix: "EVENT#" }] } } } },
    ]);
  });

  it("lets the relay and its replay publish to the events topic, but not touch the table's items or the bucket", () => {
    for (const id of ["EventsRelay", "EventsReplay"]) {
      const fn = must(stateless.functions.get(id), `${id} function`);
      const policy = policyOf(logicalId(must(fn.role, `${id} role`)));
      expect(policy, id).toContain("sns:Publish");
      expect(policy, id).toContain("dynamodb:GetRecords");
      expect(policy, id).toContain("dynamodb:GetShardIterator");
      expect(policy, id).not.toContain("s3:");
      // The relay's one write is its heartbeat item, in the HEARTBEAT partition alone.
      const writes = (
        JSON.parse(policy).Statement as { Action: string | string[]; Condition?: unknown }[]
      ).filter((s) => [s.Action].flat().some((a) => /^dynamodb:(Put|Update|Delete|BatchWrite)/.test(a)));
      expect(writes, id).toEqual(
        id === "EventsRelay"
          ? [
              expect.objectContaining({
                Action: "dynamodb:PutItem",
                Condition: { "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": ["HEARTBEAT"] } },
              }),
            ]
          : [],
      );
    }
  });

  it("lets only the function of GET /v2/status look into the pools' dead-letter queues, and the workers' take from the pool queues", () => {
    const looks = (fn: SwitchyardFunction) => {
      const policy = JSON.parse(policyOf(logicalId(must(fn.role, "role")))) as {
        Statement: { Action: string | string[]; Resource: unknown }[];
      };
      return policy.Statement.filter((s) => [s.Action].flat().includes("sqs:ReceiveMessage")).map((s) =>
        JSON.stringify(s.Resource),
      );
    };
    const dlqs = [...stateless.queues.dlqs.values()].map((dlq) => logicalId(dlq));
    const reads = looks(stateless.handlers.pools);
    expect(dlqs.every((id) => reads.some((resource) => resource.includes(id)))).toBe(true);
    const { pools, workers, ...others } = stateless.handlers;
    for (const fn of Object.values(others)) expect(looks(fn), fn.node.id).toEqual([]);
    // Self-hosted workers' claims (POST /v2/worker/claims) receive from each pool's queue, and only there.
    const poolQueues = [...stateless.queues.queues.values()].map((queue) => logicalId(queue));
    const takes = looks(workers);
    expect(takes.length).toBe(poolQueues.length);
    expect(poolQueues.every((id) => takes.some((resource) => resource.includes(id)))).toBe(true);
    expect(dlqs.some((id) => takes.some((resource) => resource.includes(id)))).toBe(false);
  });

  it("replays the failure queue's batches one at a time, and parks what it cannot replay after 5 tries", () => {
    const replay = must(stateless.functions.get("EventsReplay"), "EventsReplay function");
    const failuresId = logicalId(stateless.relay.failures);
    expect(resources[failuresId]?.Properties).toMatchObject({
      RedrivePolicy: {
        maxReceiveCount: 5,
        deadLetterTargetArn: { "Fn::GetAtt": [logicalId(stateless.relay.unreplayed), "Arn"] },
      },
      VisibilityTimeout: 360,
    });
    compute.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      FunctionName: { Ref: logicalId(replay) },
      EventSourceArn: { "Fn::GetAtt": [failuresId, "Arn"] },
      BatchSize: 1,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
  });
});

describe("callback delivery", () => {
  const callbacks = must(stateless.functions.get("Callbacks"), "Callbacks function");
  const queueId = logicalId(stateless.callbacks.queue);

  it("subscribes its queue to the events topic, raw, for run-end events of tasks with a callback only", () => {
    compute.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "sqs",
      Endpoint: { "Fn::GetAtt": [queueId, "Arn"] },
      TopicArn: { Ref: logicalId(stateless.topic) },
      RawMessageDelivery: true,
      FilterPolicy: { type: [...RUN_END_TYPES], has_callback: ["true"] },
    });
    expect(RUN_END_TYPES).toEqual(["run.succeeded", "run.failed", "run.lost", "run.canceled"]);
  });

  it("parks a message in the DLQ after 5 receives and reports partial batch failures", () => {
    expect(resources[queueId]?.Properties).toMatchObject({
      RedrivePolicy: {
        maxReceiveCount: CALLBACK_MAX_RECEIVES,
        deadLetterTargetArn: { "Fn::GetAtt": [logicalId(stateless.callbacks.dlq), "Arn"] },
      },
    });
    expect(CALLBACK_MAX_RECEIVES).toBe(5);
    compute.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      FunctionName: { Ref: logicalId(callbacks) },
      EventSourceArn: { "Fn::GetAtt": [queueId, "Arn"] },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
  });

  it("lets no function but the events relay and its replay publish to the events topic", () => {
    const publishers = [...stateless.functions.values()].filter((fn) =>
      policyOf(logicalId(must(fn.role, `${fn.node.id} role`))).includes("sns:Publish"),
    );
    expect(publishers.map((fn) => fn.node.id)).toEqual(["EventsRelay", "EventsReplay"]);
  });

  it("lets the callbacks function read the store and its signing key, not the bucket or the topic", () => {
    const roleId = logicalId(must(callbacks.role, "callbacks role"));
    const policy = policyOf(roleId);
    expect(policy).toContain("dynamodb:GetItem");
    expect(policy).toContain("sqs:ChangeMessageVisibility");
    expect(policy).toContain(`ExportsOutputRef${logicalId(stateful.callbackKey)}`);
    expect(policy).not.toContain("s3:");
    expect(policy).not.toContain("sns:Publish");
  });

  it("tells the callbacks function its queue and signing key secret", () => {
    const { Properties } = must(resources[logicalId(callbacks)], "Callbacks resource");
    const env = (Properties.Environment as { Variables: Props }).Variables;
    expect(env[ENV.callbackQueueUrl]).toEqual({ Ref: queueId });
    expect(JSON.stringify(env[ENV.callbackSecretArn])).toContain(
      `ExportsOutputRef${logicalId(stateful.callbackKey)}`,
    );
  });
});
