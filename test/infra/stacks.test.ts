import { readFileSync } from "node:fs";
import { Match, Template } from "aws-cdk-lib/assertions";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { schedulerConfigOf } from "../../core/config.ts";
import { ENV } from "../../core/names.ts";
import { staticFiles } from "../../dashboard/build.ts";
import { DOCS_PATH } from "../../functions/_shared/docs.ts";
import { ROUTE_GROUPS, ROUTES } from "../../functions/_shared/routes.ts";
import { configJsonFile } from "../../infra/constructs/switchyard-function.ts";
import { logicalId, synthSwitchyard, testConfig } from "./fixture.ts";

// Shapes of the few template fragments read by hand.
type Ref = { Ref: string };
type Props = Record<string, unknown>;
type Statement = { Action: string | string[]; Resource: unknown };

const { stateful, stateless } = synthSwitchyard();
const data = Template.fromStack(stateful);
const compute = Template.fromStack(stateless);
const resources = compute.toJSON().Resources as Record<string, { Type: string; Properties: Props }>;

const ofType = (type: string) => Object.values(resources).filter((r) => r.Type === type);
/** Properties of a resource of the stateless template, by logical ID or construct. */
const props = (of: string | IConstruct): Props => {
  const id = typeof of === "string" ? of : logicalId(of);
  const found = resources[id];
  if (!found) throw new Error(`no resource ${id} in the stateless template`);
  return found.Properties;
};
const poolQueue = (pool: string) => {
  const queue = stateless.queues.queues.get(pool);
  if (!queue) throw new Error(`no queue for pool ${pool}`);
  return queue;
};
/** The API functions and the tick: they use the table, the bucket, the topic and the pool queues. */
const coreFunctions = [...Object.values(stateless.handlers), stateless.tick];

describe("stateful stack", () => {
  it("has the table from TABLE: keys, four ALL-projected GSIs, on-demand, PITR, TTL, deletion protection", () => {
    const keys = (pk: string, sk: string) => [
      { AttributeName: pk, KeyType: "HASH" },
      { AttributeName: sk, KeyType: "RANGE" },
    ];
    data.resourceCountIs("AWS::DynamoDB::GlobalTable", 1);
    data.hasResource("AWS::DynamoDB::GlobalTable", {
      DeletionPolicy: "Retain",
      Properties: Match.objectLike({
        KeySchema: keys("pk", "sk"),
        BillingMode: "PAY_PER_REQUEST",
        GlobalSecondaryIndexes: [
          { name: "by-tenant", pk: "gsi1pk", sk: "gsi1sk" },
          { name: "ready", pk: "gsi2pk", sk: "gsi2sk" },
          { name: "due", pk: "gsi3pk", sk: "gsi3sk" },
          { name: "by-key", pk: "gsi4pk", sk: "gsi4sk" },
        ].map(({ name, pk, sk }) => ({
          IndexName: name,
          KeySchema: keys(pk, sk),
          Projection: { ProjectionType: "ALL" },
        })),
        TimeToLiveSpecification: { AttributeName: "expires_at", Enabled: true },
        Replicas: [
          Match.objectLike({
            DeletionProtectionEnabled: true,
            PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          }),
        ],
      }),
    });
  });

  it("lets deletion protection be turned off", () => {
    const { stateful: unprotected } = synthSwitchyard({ deletionProtection: false });
    Template.fromStack(unprotected).hasResourceProperties("AWS::DynamoDB::GlobalTable", {
      Replicas: [Match.objectLike({ DeletionProtectionEnabled: false })],
    });
  });

  it("encrypts the buckets, blocks public access, denies non-TLS requests, expires logs/ after 90 days and sessions/ after 7", () => {
    data.resourceCountIs("AWS::S3::Bucket", 2);
    data.allResourcesProperties("AWS::S3::Bucket", {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: [
          Match.objectLike({ Prefix: "logs/", ExpirationInDays: 90, Status: "Enabled" }),
          Match.objectLike({ Prefix: "sessions/", ExpirationInDays: 7, Status: "Enabled" }),
        ],
      },
    });
    for (const bucketId of Object.keys(data.findResources("AWS::S3::Bucket"))) {
      data.hasResourceProperties("AWS::S3::BucketPolicy", {
        Bucket: { Ref: bucketId },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: "Deny",
              Action: "s3:*",
              Condition: { Bool: { "aws:SecureTransport": "false" } },
            }),
          ]),
        },
      });
    }
    // The artifacts bucket sends its server access logs to the other one.
    data.hasResourceProperties("AWS::S3::Bucket", {
      LoggingConfiguration: { DestinationBucketName: { Ref: Match.anyValue() }, LogFilePrefix: "logs/" },
    });
  });
});

describe("stateless stack", () => {
  it("gives every pool a FIFO queue whose redrive policy points at its own FIFO DLQ", () => {
    const pools = testConfig.pools.map((p) => p.name);
    expect([...stateless.queues.queues.keys()]).toEqual(pools);
    // Exactly one work queue and one DLQ per pool: nothing missing, nothing extra.
    const fifo = ofType("AWS::SQS::Queue").filter((q) => q.Properties.FifoQueue);
    expect(fifo).toHaveLength(2 * pools.length);
    expect(fifo.filter((q) => q.Properties.RedrivePolicy)).toHaveLength(pools.length);

    const dlqIds = testConfig.pools.map((pool) => {
      const queue = props(poolQueue(pool.name));
      expect(queue).toMatchObject({
        FifoQueue: true,
        SqsManagedSseEnabled: true,
        VisibilityTimeout: pool.lease_seconds,
        // High throughput mode: deduplication and throughput per message group.
        DeduplicationScope: "messageGroup",
        FifoThroughputLimit: "perMessageGroupId",
        RedrivePolicy: {
          maxReceiveCount: 5,
          deadLetterTargetArn: { "Fn::GetAtt": [expect.any(String), "Arn"] },
        },
      });
      const [dlqId] = (queue.RedrivePolicy as { deadLetterTargetArn: { "Fn::GetAtt": [string] } })
        .deadLetterTargetArn["Fn::GetAtt"];
      expect(props(dlqId)).toMatchObject({ FifoQueue: true, SqsManagedSseEnabled: true });
      return dlqId;
    });
    expect(new Set(dlqIds).size).toBe(pools.length);
  });

  it("denies non-TLS access to every queue and topic", () => {
    // The events topic and the alarms topic; the pool queues, their DLQs, the callback queue and the
    // workflows queue with their DLQs, the relay's failure queue, what its replay gave up on, and the pod
    // ends not delivered.
    compute.resourceCountIs("AWS::SNS::Topic", 2);
    compute.resourceCountIs("AWS::SQS::Queue", 2 * testConfig.pools.length + 7);
    const policies = [...ofType("AWS::SQS::QueuePolicy"), ...ofType("AWS::SNS::TopicPolicy")];
    expect(policies).toHaveLength(2 * testConfig.pools.length + 7 + 2);
    for (const policy of policies) {
      expect(JSON.stringify(policy.Properties)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it("runs every function on nodejs22.x and arm64 with the shared environment", () => {
    // One per route group, the tick, the events relay, its replay, the callbacks, the workflows, and the
    // pod launcher and pod events of the container pool.
    compute.resourceCountIs("AWS::Lambda::Function", ROUTE_GROUPS.length + 8);
    compute.allResourcesProperties("AWS::Lambda::Function", {
      Runtime: "nodejs22.x",
      Architectures: ["arm64"],
      MemorySize: 256,
      Handler: "index.handler",
      TracingConfig: { Mode: "Active" },
      Environment: {
        Variables: Match.objectLike({
          [ENV.tableName]: Match.anyValue(),
          [ENV.bucketName]: Match.anyValue(),
          [ENV.topicArn]: { Ref: Match.anyValue() },
          [ENV.queueUrls]: Match.anyValue(),
          [ENV.schedulerConfig]: "/var/task/scheduler.config.json",
          POWERTOOLS_SERVICE_NAME: "switchyard",
        }),
      },
    });
  });

  it("maps every pool name to its queue URL in SWITCHYARD_QUEUE_URLS", () => {
    const expected = Object.fromEntries(
      testConfig.pools.map((p) => [p.name, `ref:${logicalId(poolQueue(p.name))}`]),
    );
    for (const fn of stateless.functions.values()) {
      const { Variables } = props(fn).Environment as { Variables: Record<string, unknown> };
      // Stack.toJsonString renders a Fn::Join; put each queue Ref back as text and parse the JSON.
      const [, parts] = (Variables[ENV.queueUrls] as { "Fn::Join": [string, (string | Ref)[]] })["Fn::Join"];
      const urls = JSON.parse(parts.map((p) => (typeof p === "string" ? p : `ref:${p.Ref}`)).join(""));
      expect(urls).toEqual(expected);
    }
  });

  it("invokes the tick function every minute", () => {
    compute.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 minute)",
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [logicalId(stateless.tick), "Arn"] } })],
    });
  });

  it("serves every route of ROUTES, and the static files, and nothing else, each route proxied to its group's function", () => {
    const pathOf = (resourceId: string): string => {
      const { ParentId, PathPart } = props(resourceId) as { ParentId: Partial<Ref>; PathPart: string };
      return `${ParentId.Ref ? pathOf(ParentId.Ref) : ""}/${PathPart}`;
    };
    const served = new Map(
      ofType("AWS::ApiGateway::Method").map(({ Properties: p }) => [
        // The root resource (the dashboard's page) is the API's own, not a Ref.
        `${p.HttpMethod} ${(p.ResourceId as Partial<Ref>).Ref ? pathOf((p.ResourceId as Ref).Ref) : "/"}`,
        p.Integration as { Type: string; Uri: unknown },
      ]),
    );

    const files = Object.keys(staticFiles()).map((path) => `GET ${path}`);
    expect(files).toEqual(expect.arrayContaining(["GET /", "GET /dashboard/app.js", `GET ${DOCS_PATH}`]));
    expect([...served.keys()].sort()).toEqual(
      [...ROUTES.map((r) => `${r.method} ${r.path}`), ...files].sort(),
    );
    for (const route of ROUTES) {
      const integration = served.get(`${route.method} ${route.path}`);
      expect(integration?.Type).toBe("AWS_PROXY");
      expect(JSON.stringify(integration?.Uri)).toContain(`"${logicalId(stateless.handlers[route.group])}"`);
    }
  });

  it("serves the docs and the dashboard from S3 as assets of the stack, reading those objects only", () => {
    const fileMethods = ofType("AWS::ApiGateway::Method").filter(
      ({ Properties: p }) => (p.Integration as { Type: string }).Type === "AWS",
    );
    expect(fileMethods).toHaveLength(Object.keys(staticFiles()).length);
    const page = fileMethods.find(({ Properties: p }) => !(p.ResourceId as Partial<Ref>).Ref)?.Properties;
    if (!page) throw new Error("no method at the API's root");
    const pageAnswer = (page.Integration as { IntegrationResponses: Props[] }).IntegrationResponses[0];
    expect(pageAnswer?.ResponseParameters).toEqual({
      "method.response.header.Content-Type": "'text/html; charset=utf-8'",
      "method.response.header.X-Content-Type-Options": "'nosniff'",
      "method.response.header.X-Frame-Options": "'DENY'",
      "method.response.header.Referrer-Policy": "'no-referrer'",
    });
    for (const { Properties: p } of fileMethods) {
      const integration = p.Integration as {
        Uri: unknown;
        Credentials: unknown;
        IntegrationResponses: Props[];
      };
      expect(JSON.stringify(integration.Uri)).toMatch(
        /s3:path\/.*cdk-[a-z0-9]+-assets-.*\/[0-9a-f]{64}\.(html|js|css)"/,
      );
      expect(integration.IntegrationResponses[0]?.ResponseParameters).toMatchObject({
        "method.response.header.Content-Type": expect.stringMatching(/^'text\/(html|css|javascript)/),
      });
    }
    const readPolicy = Object.values(resources).find(
      (r) => r.Type === "AWS::IAM::Policy" && JSON.stringify(r.Properties).includes("FilesReadRole"),
    );
    if (!readPolicy) throw new Error("no policy of the static files' read role");
    const statements = (readPolicy.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
    expect(statements.map((st) => st.Action)).toEqual(Object.keys(staticFiles()).map(() => "s3:GetObject"));
    for (const st of statements) expect(JSON.stringify(st.Resource)).not.toMatch(/\/\*"/);
  });

  it("writes API access logs and execution errors, and traces the stage", () => {
    compute.hasResourceProperties("AWS::ApiGateway::Stage", {
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.anyValue() },
      MethodSettings: [Match.objectLike({ LoggingLevel: "ERROR", HttpMethod: "*", ResourcePath: "/*" })],
      TracingEnabled: true,
    });
  });

  it("serves runs' streams from a WebSocket API whose $connect is the RunStream function, pushed by the workflows functions", () => {
    const connect = stateless.functions.get("RunStream") as IConstruct;
    const apiId = { Ref: logicalId(stateless.runStream.api) };
    compute.resourceCountIs("AWS::ApiGatewayV2::Api", 1);
    compute.hasResourceProperties("AWS::ApiGatewayV2::Api", { ProtocolType: "WEBSOCKET" });
    const routes = ofType("AWS::ApiGatewayV2::Route").map((r) => r.Properties.RouteKey);
    expect(routes).toEqual(["$connect"]);
    compute.hasResourceProperties("AWS::ApiGatewayV2::Integration", {
      ApiId: apiId,
      IntegrationType: "AWS_PROXY",
    });
    expect(JSON.stringify(ofType("AWS::ApiGatewayV2::Integration")[0]?.Properties)).toContain(
      logicalId(connect),
    );
    compute.hasResourceProperties("AWS::ApiGatewayV2::Stage", {
      ApiId: apiId,
      StageName: "v2",
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.anyValue() },
      DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: Match.anyValue() }),
    });
    const env = (fn: IConstruct) => (props(fn).Environment as { Variables: Props }).Variables;
    const policyOf = (fn: IConstruct) => {
      const role = (fn as { role?: IConstruct }).role;
      const policy = ofType("AWS::IAM::Policy").find(
        (p) => JSON.stringify(p.Properties.Roles) === `[{"Ref":"${role ? logicalId(role) : ""}"}]`,
      );
      return JSON.stringify(policy?.Properties.PolicyDocument);
    };
    const pushers = [stateless.functions.get("Workflows"), stateless.handlers.workflows] as IConstruct[];
    for (const fn of stateless.functions.values()) {
      const pushes = pushers.includes(fn);
      expect([fn.node.id, policyOf(fn).includes("execute-api:ManageConnections")]).toEqual([
        fn.node.id,
        pushes,
      ]);
      expect([fn.node.id, env(fn)[ENV.streamEndpoint] !== undefined]).toEqual([fn.node.id, pushes]);
      if (pushes)
        expect(JSON.stringify(env(fn)[ENV.streamUrl])).toContain("?workflow_id={id}&run_id={run_id}");
    }
    const queueUrl = logicalId(stateless.workflowEvents.queue);
    for (const fn of stateless.functions.values()) {
      const sends = [connect, ...pushers].includes(fn);
      expect([fn.node.id, JSON.stringify(env(fn)[ENV.workflowQueueUrl] ?? "").includes(queueUrl)]).toEqual([
        fn.node.id,
        sends,
      ]);
    }
    expect(policyOf(connect)).toContain("sqs:SendMessage");
  });

  it("grants the API functions and the tick the table and the bucket by ARN, never dynamodb or s3 on *", () => {
    const tableArn = `SwitchyardStateful:ExportsOutputFnGetAtt${logicalId(stateful.table)}Arn`;
    const bucketArn = `SwitchyardStateful:ExportsOutputFnGetAtt${logicalId(stateful.bucket)}Arn`;
    for (const fn of coreFunctions) {
      const roleId = fn.role ? logicalId(fn.role) : "";
      const policy = ofType("AWS::IAM::Policy").find(
        (p) => JSON.stringify(p.Properties.Roles) === `[{"Ref":"${roleId}"}]`,
      );
      const statements =
        (policy?.Properties.PolicyDocument as { Statement: Statement[] } | undefined)?.Statement ?? [];
      const on = (service: string) =>
        statements.filter((s) => [s.Action].flat().some((action) => action.startsWith(`${service}:`)));

      for (const [service, arn] of [
        ["dynamodb", tableArn],
        ["s3", bucketArn],
      ] as const) {
        expect(on(service).length, `${fn.node.path} ${service}`).toBeGreaterThan(0);
        for (const statement of on(service)) {
          expect([statement.Resource].flat()).not.toContain("*");
          expect(JSON.stringify(statement.Resource)).toContain(arn);
        }
      }
    }
  });

  it("gives only the API functions (and the stream's $connect) the admin key secret, by ARN", () => {
    const secretArn = `SwitchyardStateful:ExportsOutputRef${logicalId(stateful.adminKey)}`;
    const authenticating = [...Object.values(stateless.handlers), stateless.functions.get("RunStream")];
    for (const fn of authenticating as IConstruct[]) {
      const env = (props(fn).Environment as { Variables: Props }).Variables;
      expect(JSON.stringify(env[ENV.adminKeySecret])).toContain(secretArn);
    }
    const api = new Set<IConstruct | undefined>(authenticating);
    const others = [...stateless.functions.values()].filter((fn) => !api.has(fn));
    expect(others.length).toBeGreaterThan(0);
    for (const fn of others) {
      const env = (props(fn).Environment as { Variables: Props }).Variables;
      expect(env[ENV.adminKeySecret], fn.node.id).toBeUndefined();
    }
  });

  it("keeps the config file in an SSM parameter that only the reloading function names and reads", () => {
    const parameter = props(stateless.configParameter);
    expect(parameter).toMatchObject({ Type: "String", Tier: "Standard" });
    expect(parameter.Value).toBe(readFileSync(stateless.configFile, "utf8"));
    const parameterRef = { Ref: logicalId(stateless.configParameter) };
    const reloader = stateless.handlers.pools;
    const named = (fn: IConstruct) =>
      (props(fn).Environment as { Variables: Props }).Variables[ENV.configParameter];
    expect(named(reloader)).toEqual(parameterRef);
    for (const fn of [...stateless.functions.values()].filter((f) => f !== reloader)) {
      expect(named(fn), fn.node.id).toBeUndefined();
    }
    const reads = ofType("AWS::IAM::Policy").flatMap((policy) =>
      ((policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement ?? []).filter((s) =>
        [s.Action].flat().some((action) => action.startsWith("ssm:")),
      ),
    );
    expect(reads).toHaveLength(1);
    expect([reads[0]?.Action].flat()).toEqual([
      "ssm:DescribeParameters",
      "ssm:GetParameters",
      "ssm:GetParameter",
      "ssm:GetParameterHistory",
    ]);
    expect(JSON.stringify(reads[0]?.Resource)).toContain(logicalId(stateless.configParameter));
  });

  it("answers unknown routes, throttling and oversize bodies from the gateway in the envelope", () => {
    for (const [type, status, code] of [
      ["MISSING_AUTHENTICATION_TOKEN", "404", "1012"],
      ["THROTTLED", "429", "1010"],
      ["REQUEST_TOO_LARGE", "413", "1011"],
      ["DEFAULT_5XX", "500", "2001"],
    ]) {
      compute.hasResourceProperties("AWS::ApiGateway::GatewayResponse", {
        ResponseType: type,
        StatusCode: status,
        ResponseTemplates: { "application/json": Match.stringLikeRegexp(`"code":"${code}"`) },
      });
    }
  });
});

describe("the functions' scheduler config", () => {
  it("is bundled as JSON that reads back as the same config (no YAML parser in the bundles)", () => {
    const file = configJsonFile(testConfig);
    expect(file.endsWith("scheduler.config.json")).toBe(true);
    expect(schedulerConfigOf(JSON.parse(readFileSync(file, "utf8")), file)).toEqual(testConfig);
  });

  it("is what the functions build their dependencies from", async () => {
    const env = {
      [ENV.schedulerConfig]: configJsonFile(testConfig),
      [ENV.tableName]: "t",
      [ENV.bucketName]: "b",
      [ENV.queueUrls]: "{}",
      [ENV.adminKey]: "admin",
      [ENV.callbackSecret]: "secret",
    };
    Object.assign(process.env, env);
    try {
      const { lambdaDeps } = await import("../../functions/_shared/composition.ts");
      expect((await lambdaDeps()).config).toEqual(testConfig);
    } finally {
      for (const name of Object.keys(env)) delete process.env[name];
    }
  });
});
