import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { App, CfnWaitConditionHandle, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { DockerImageAsset } from "aws-cdk-lib/aws-ecr-assets";
import type { IConstruct } from "constructs";
import { afterAll, describe, expect, it } from "vitest";
import type { CliPool, PoolConfig } from "../../core/config.ts";
import { ENV } from "../../core/names.ts";
import { fargateMemoryOptions } from "../../core/pods.ts";
import { credentialsOutputName } from "../../infra/constructs/pool-credentials.ts";
import { PROJECT_ROOT } from "../../infra/constructs/switchyard-function.ts";
import {
  WORKER_DOCKERFILE,
  workerContextExcludes,
  workerImageProps,
} from "../../infra/constructs/worker-image.ts";
import { SCALE_IN } from "../../infra/constructs/worker-scaling.ts";
import { workerStop } from "../../infra/secure-defaults.ts";
import { loadSchedulerConfig } from "../../runtime/scheduler-config.ts";
import { cliPools, logicalId, synthSwitchyard, testConfig } from "./fixture.ts";

type Props = Record<string, unknown>;
type Resource = { Type: string; Properties: Props; DependsOn?: string[] };
type Ref = { Ref: string };
type NameValue = { Name: string; Value?: unknown; ValueFrom?: unknown };
type Container = {
  Environment: NameValue[];
  Secrets?: NameValue[];
  StopTimeout?: number;
  LogConfiguration?: { LogDriver: string; Options: Record<string, unknown> };
};

const resourcesOf = (stack: Stack) =>
  Template.fromStack(stack).toJSON().Resources as Record<string, Resource>;
const envValue = (container: Container, name: string) =>
  container.Environment.find((e) => e.Name === name)?.Value;

/**
 * What each pool of `pools` is missing in a stateless template, read from the template alone: its work
 * queue (from the pool -> queue URL map the functions get), that queue's DLQ (its redrive policy), and a
 * Fargate service whose container serves the pool (SWITCHYARD_POOL). Empty when every pool is complete.
 */
function missingPoolResources(resources: Record<string, Resource>, pools: readonly string[]) {
  const all = Object.entries(resources);
  const fn = all.find(([, r]) => r.Type === "AWS::Lambda::Function")?.[1];
  const queueUrls = (fn?.Properties.Environment as { Variables: Props } | undefined)?.Variables[
    ENV.queueUrls
  ];
  const [, parts] = (queueUrls as { "Fn::Join": [string, (string | Ref)[]] })["Fn::Join"];
  const queueIds = JSON.parse(parts.map((p) => (typeof p === "string" ? p : p.Ref)).join("")) as Record<
    string,
    string
  >;
  const servedPools = all
    .filter(([, r]) => r.Type === "AWS::ECS::Service")
    .map(([, service]) => {
      const taskDefinition = resources[(service.Properties.TaskDefinition as Ref).Ref];
      const [container] = (taskDefinition?.Properties.ContainerDefinitions ?? []) as Container[];
      return container && envValue(container, ENV.pool);
    });

  return pools.flatMap((pool) => {
    const missing: string[] = [];
    const queue = resources[queueIds[pool] ?? ""];
    if (queue?.Type !== "AWS::SQS::Queue" || !queue.Properties.FifoQueue) missing.push(`${pool}: queue`);
    const redrive = queue?.Properties.RedrivePolicy as
      | { deadLetterTargetArn: { "Fn::GetAtt": [string, string] } }
      | undefined;
    const dlq = resources[redrive?.deadLetterTargetArn["Fn::GetAtt"][0] ?? ""];
    if (dlq?.Type !== "AWS::SQS::Queue" || !dlq.Properties.FifoQueue) missing.push(`${pool}: dlq`);
    // A CLI pool has its worker service; a container pool, the pod launcher on its queue.
    const launched = all.some(
      ([, r]) =>
        r.Type === "AWS::Lambda::EventSourceMapping" &&
        JSON.stringify(r.Properties.EventSourceArn) ===
          JSON.stringify({ "Fn::GetAtt": [queueIds[pool], "Arn"] }),
    );
    if (!servedPools.includes(pool) && !launched) missing.push(`${pool}: service`);
    return missing;
  });
}

const { app, stateful, stateless } = synthSwitchyard();
const resources = resourcesOf(stateless);
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

/** The task definition, container and service of a pool, found by the container's SWITCHYARD_POOL. */
function poolService(pool: string) {
  const [taskId, task] =
    ofType("AWS::ECS::TaskDefinition").find(([, t]) => {
      const [container] = t.Properties.ContainerDefinitions as Container[];
      return container && envValue(container, ENV.pool) === pool;
    }) ?? [];
  const [serviceId, service] =
    ofType("AWS::ECS::Service").find(([, s]) => (s.Properties.TaskDefinition as Ref).Ref === taskId) ?? [];
  if (!task || !service || !serviceId) throw new Error(`no worker service for pool ${pool}`);
  const [container] = task.Properties.ContainerDefinitions as [Container];
  return { task, container, service, serviceId };
}
const queueId = (pool: string) => {
  const queue = stateless.queues.queues.get(pool);
  if (!queue) throw new Error(`no queue for pool ${pool}`);
  return logicalId(queue);
};

describe("every pool of the config has its queue, DLQ and worker service", () => {
  it("holds for the test config", () => {
    expect(
      missingPoolResources(
        resources,
        testConfig.pools.map((p) => p.name),
      ),
    ).toEqual([]);
  });

  it("holds for the repository's scheduler.config.yaml", () => {
    const configFile = resolve(PROJECT_ROOT, "scheduler.config.yaml");
    const config = loadSchedulerConfig({ [ENV.schedulerConfig]: configFile });
    const { stateless: real } = synthSwitchyard({ configFile });
    expect(
      missingPoolResources(
        resourcesOf(real),
        config.pools.map((p) => p.name),
      ),
    ).toEqual([]);
  });

  it("reports a pool whose service, queue or DLQ is missing (the check can fail)", () => {
    const { stateless: noWorkers } = synthSwitchyard({ workers: false });
    expect(missingPoolResources(resourcesOf(noWorkers), ["alpha", "nope"])).toEqual([
      "alpha: service",
      "nope: queue",
      "nope: dlq",
      "nope: service",
    ]);
  });
});

describe("worker services", () => {
  it("runs one Fargate service per pool, in one cluster, with public IPs and no ingress", () => {
    expect(ofType("AWS::ECS::Cluster")).toHaveLength(1);
    expect(ofType("AWS::ECS::Service")).toHaveLength(cliPools.length);
    expect(ofType("AWS::EC2::NatGateway")).toHaveLength(0);
    for (const pool of cliPools) {
      const { service } = poolService(pool.name);
      expect(service.Properties).toMatchObject({
        LaunchType: "FARGATE",
        NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: "ENABLED" } },
        DeploymentConfiguration: {
          MinimumHealthyPercent: 100,
          DeploymentCircuitBreaker: { Enable: true, Rollback: true },
        },
      });
      // The scalable target owns the count; a template value would reset it on every deployment.
      expect(service.Properties.DesiredCount).toBeUndefined();
    }
    const [[, securityGroup] = []] = ofType("AWS::EC2::SecurityGroup");
    expect(securityGroup?.Properties.SecurityGroupIngress).toBeUndefined();
    expect(ofType("AWS::EC2::FlowLog")).toHaveLength(1);
  });

  it("sizes each pool's task from its worker settings, on ARM64 Linux", () => {
    for (const pool of cliPools) {
      const { task } = poolService(pool.name);
      expect(task.Properties, pool.name).toMatchObject({
        Cpu: String(pool.worker.cpu),
        Memory: String(pool.worker.memory),
        RuntimePlatform: { CpuArchitecture: "ARM64", OperatingSystemFamily: "LINUX" },
        RequiresCompatibilities: ["FARGATE"],
      });
    }
    // The pools really differ, so the sizes above come from each pool's own settings.
    expect(new Set(cliPools.map((p) => `${p.worker.cpu}/${p.worker.memory}`)).size).toBe(3);
  });

  it("gives each worker the shared environment, its pool, the drain time and the config path in the image", () => {
    const fnEnv = (props: Props) => (props.Environment as { Variables: Props }).Variables;
    const shared = fnEnv(resources[logicalId(stateless.tick)]?.Properties ?? {});
    for (const pool of cliPools) {
      const { container } = poolService(pool.name);
      for (const name of [ENV.tableName, ENV.bucketName, ENV.topicArn, ENV.queueUrls]) {
        expect(envValue(container, name), name).toEqual(shared[name]);
      }
      expect(envValue(container, ENV.pool)).toBe(pool.name);
      expect(envValue(container, ENV.drainSeconds)).toBe(String(workerStop.drainSeconds));
      expect(envValue(container, ENV.schedulerConfig)).toBe("/app/scheduler.config.yaml");
      expect(envValue(container, ENV.credentials)).toBeUndefined();
    }
  });

  it("lets a stopping worker drain: stop timeout ≥ drain + 20 s, within Fargate's 120 s", () => {
    for (const pool of cliPools) {
      const { container } = poolService(pool.name);
      expect(container.StopTimeout).toBe(workerStop.stopTimeoutSeconds);
      expect(container.StopTimeout).toBeGreaterThanOrEqual(workerStop.drainSeconds + 20);
      expect(container.StopTimeout).toBeLessThanOrEqual(120);
    }
  });

  it("logs each worker to its own CloudWatch log group with a retention", () => {
    for (const pool of cliPools) {
      const { container } = poolService(pool.name);
      expect(container.LogConfiguration?.LogDriver).toBe("awslogs");
      const group =
        resources[(container.LogConfiguration?.Options["awslogs-group"] as Ref | undefined)?.Ref ?? ""];
      expect(group?.Properties.RetentionInDays).toBe(90);
    }
  });

  it("injects the pool account's credentials secret as SWITCHYARD_CREDENTIALS, one secret per (tool, account)", () => {
    const secretOf = (pool: PoolConfig) => {
      const secret = stateful.credentials.secrets.get(`${pool.tool}/${pool.account}`);
      if (!secret) throw new Error(`no secret for ${pool.name}`);
      return `SwitchyardStateful:ExportsOutputRef${logicalId(secret)}`;
    };
    const injected = (pool: PoolConfig) => poolService(pool.name).container.Secrets;
    for (const pool of cliPools) {
      expect(injected(pool)).toEqual([
        { Name: ENV.credentials, ValueFrom: { "Fn::ImportValue": expect.stringContaining(secretOf(pool)) } },
      ]);
    }
    // alpha and gamma share claude/a; beta-2 has codex/b.
    const [alpha, beta, gamma] = cliPools as [CliPool, CliPool, CliPool];
    expect(injected(alpha)).toEqual(injected(gamma));
    expect(injected(alpha)).not.toEqual(injected(beta));

    const data = Template.fromStack(stateful);
    // The admin key, the callback signing key, and claude/a and codex/b.
    data.resourceCountIs("AWS::SecretsManager::Secret", 4);
    for (const secret of stateful.credentials.secrets.values()) {
      const { Properties } = data.toJSON().Resources[logicalId(secret)] as Resource;
      // Created holding an empty JSON object (the worker parses it), never a generated string.
      expect(Properties.SecretString).toBe("{}");
      expect(Properties.GenerateSecretString).toBeUndefined();
      expect(Properties.Description).toMatch(/Put a JSON object of environment variables/);
      expect(Properties.Description).toContain(ENV.credentials);
    }
    expect(Object.keys(data.toJSON().Outputs)).toEqual(
      expect.arrayContaining([credentialsOutputName(alpha), credentialsOutputName(beta)]),
    );
  });

  it("lets only the execution role read the pool's own secret", () => {
    const policies = ofType("AWS::IAM::Policy").map(([, p]) => JSON.stringify(p.Properties));
    for (const pool of cliPools) {
      const secret = stateful.credentials.secrets.get(`${pool.tool}/${pool.account}`);
      const arn = `ExportsOutputRef${logicalId(secret as IConstruct)}`;
      const { task } = poolService(pool.name);
      const roleOf = (attr: string) =>
        JSON.stringify([{ Ref: (task.Properties[attr] as { "Fn::GetAtt": [string] })["Fn::GetAtt"][0] }]);
      const execution = policies.find((p) => p.includes(`"Roles":${roleOf("ExecutionRoleArn")}`));
      const taskRole = policies.find((p) => p.includes(`"Roles":${roleOf("TaskRoleArn")}`));
      expect(execution).toContain("secretsmanager:GetSecretValue");
      expect(execution).toContain(arn);
      expect(taskRole).not.toContain("secretsmanager:");
    }
  });

  it("grants each worker the table, the bucket, its own queue to consume and every pool queue to send", () => {
    const statementsOf = (pool: string) => {
      const { task } = poolService(pool);
      const roleId = (task.Properties.TaskRoleArn as { "Fn::GetAtt": [string] })["Fn::GetAtt"][0];
      const [, policy] =
        ofType("AWS::IAM::Policy").find(
          ([, p]) => JSON.stringify(p.Properties.Roles) === `[{"Ref":"${roleId}"}]`,
        ) ?? [];
      if (!policy) throw new Error(`no task role policy for pool ${pool}`);
      return (
        policy.Properties.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown }[] }
      ).Statement;
    };
    for (const pool of cliPools) {
      const statements = statementsOf(pool.name);
      const on = (action: string) =>
        statements.filter((s) => [s.Action].flat().includes(action)).map((s) => JSON.stringify(s.Resource));
      expect(on("dynamodb:PutItem").join()).toContain(`ExportsOutputFnGetAtt${logicalId(stateful.table)}Arn`);
      expect(on("s3:PutObject").join()).toContain(`ExportsOutputFnGetAtt${logicalId(stateful.bucket)}Arn`);
      // Receive only from its own queue.
      const receive = on("sqs:ReceiveMessage").join();
      for (const other of cliPools) {
        if (other.name === pool.name) expect(receive).toContain(queueId(other.name));
        else expect(receive).not.toContain(queueId(other.name));
      }
      // Send to every pool queue (a finished run admits the next task).
      const send = on("sqs:SendMessage").join();
      for (const other of cliPools) expect(send).toContain(queueId(other.name));
      for (const s of statements) {
        if ([s.Action].flat().some((a) => /^(dynamodb|s3|sqs):/.test(a))) expect(s.Resource).not.toBe("*");
      }
      // Scale-in protection of its own task: the tasks of the workers' cluster, nothing wider.
      const protection = on("ecs:UpdateTaskProtection").join();
      expect(protection).toContain(":task/");
      expect(protection).toContain(`{"Ref":"${logicalId(stateless.workers?.cluster as IConstruct)}"}`);
      expect(on("ecs:GetTaskProtection").join()).toBe(protection);
    }
  });
});

describe("worker autoscaling", () => {
  const targetOf = (pool: string) => {
    const { serviceId } = poolService(pool);
    const found = ofType("AWS::ApplicationAutoScaling::ScalableTarget").find(([, t]) =>
      JSON.stringify(t.Properties.ResourceId).includes(`"${serviceId}"`),
    );
    if (!found) throw new Error(`no scalable target for pool ${pool}`);
    return found;
  };
  const policiesOf = (targetId: string) =>
    ofType("AWS::ApplicationAutoScaling::ScalingPolicy").filter(
      ([, p]) => (p.Properties.ScalingTargetId as Ref).Ref === targetId,
    );
  const alarmOf = (policyId: string) => {
    const found = ofType("AWS::CloudWatch::Alarm").find(([, a]) =>
      JSON.stringify(a.Properties.AlarmActions).includes(`"${policyId}"`),
    );
    if (!found) throw new Error(`no alarm triggers ${policyId}`);
    return found[1].Properties;
  };

  it("scales each pool's service between its worker min and max (zero allowed)", () => {
    for (const pool of cliPools) {
      const [, target] = targetOf(pool.name);
      expect(target.Properties, pool.name).toMatchObject({
        MinCapacity: pool.worker.min,
        MaxCapacity: pool.worker.max,
        ScalableDimension: "ecs:service:DesiredCount",
      });
    }
    expect(cliPools.map((p) => p.worker.min)).toContain(0);
  });

  it("scales out as soon as a message waits on the pool's queue, about one worker per `slots` messages", () => {
    for (const pool of cliPools) {
      const [targetId] = targetOf(pool.name);
      const [[policyId, policy] = []] = policiesOf(targetId).filter(([, p]) =>
        JSON.stringify(p.Properties).includes("MetricIntervalLowerBound"),
      );
      if (!policyId || !policy) throw new Error(`no scale-out policy for ${pool.name}`);
      expect(alarmOf(policyId)).toMatchObject({
        MetricName: "ApproximateNumberOfMessagesVisible",
        Namespace: "AWS/SQS",
        Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [queueId(pool.name), "QueueName"] } }],
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        Threshold: 1,
        EvaluationPeriods: 1,
        Period: 60,
      });
      const { StepAdjustments } = policy.Properties.StepScalingPolicyConfiguration as {
        StepAdjustments: { MetricIntervalLowerBound: number; ScalingAdjustment: number }[];
      };
      // Steps start at 1 message (threshold) and go up by `slots` messages, never past the pool's max.
      expect(StepAdjustments[1]?.MetricIntervalLowerBound).toBe(pool.worker.slots);
      for (const step of StepAdjustments) {
        expect(step.ScalingAdjustment).toBeGreaterThan(0);
        expect(step.ScalingAdjustment).toBeLessThanOrEqual(pool.worker.max);
      }
    }
  });

  it("scales in one worker at a time after 30 idle minutes (nothing waiting, nothing received)", () => {
    for (const pool of cliPools) {
      const [targetId] = targetOf(pool.name);
      const [[policyId, policy] = []] = policiesOf(targetId).filter(
        ([, p]) => !JSON.stringify(p.Properties).includes("MetricIntervalLowerBound"),
      );
      if (!policyId || !policy) throw new Error(`no scale-in policy for ${pool.name}`);
      expect(policy.Properties.StepScalingPolicyConfiguration).toMatchObject({
        AdjustmentType: "ChangeInCapacity",
        StepAdjustments: [{ MetricIntervalUpperBound: 0, ScalingAdjustment: -1 }],
      });
      const alarm = alarmOf(policyId);
      expect(alarm).toMatchObject({
        ComparisonOperator: "LessThanOrEqualToThreshold",
        Threshold: 0,
        EvaluationPeriods: SCALE_IN.idlePeriods,
      });
      expect(SCALE_IN.idlePeriods * SCALE_IN.idlePeriod.toMinutes()).toBe(30);
      const metrics = JSON.stringify(alarm.Metrics);
      expect(metrics).toContain("ApproximateNumberOfMessagesVisible");
      expect(metrics).toContain("NumberOfMessagesReceived");
      expect(metrics).toContain(`"${queueId(pool.name)}"`);
    }
  });
});

describe("worker image", () => {
  it("is one ARM64 Docker image asset built from containers/worker/Dockerfile, at deploy time only", () => {
    const assembly = app.synth();
    const manifest = JSON.parse(
      readFileSync(join(assembly.directory, `${stateless.artifactId}.assets.json`), "utf8"),
    ) as { dockerImages: Record<string, { source: { dockerFile: string; platform: string } }> };
    const images = Object.values(manifest.dockerImages);
    expect(images).toHaveLength(1);
    expect(images[0]?.source).toMatchObject({ dockerFile: WORKER_DOCKERFILE, platform: "linux/arm64" });
  });

  it("is left out, with its VPC and cluster, when workers are off (LocalStack's free plan)", () => {
    const { app: noWorkersApp, stateless: noWorkers } = synthSwitchyard({ workers: false });
    const types = new Set(Object.values(resourcesOf(noWorkers)).map((r) => r.Type));
    expect([...types].filter((t) => /^AWS::(ECS|EC2|ApplicationAutoScaling)::/.test(t))).toEqual([]);
    const assembly = noWorkersApp.synth();
    const manifest = JSON.parse(
      readFileSync(join(assembly.directory, `${noWorkers.artifactId}.assets.json`), "utf8"),
    ) as { dockerImages: Record<string, unknown> };
    expect(manifest.dockerImages).toEqual({});
  });

  describe("build context", () => {
    const outdir = mkdtempSync(join(tmpdir(), "switchyard-context-"));
    afterAll(() => rmSync(outdir, { recursive: true, force: true }));
    const contextApp = new App({ outdir });
    const stack = new Stack(contextApp, "Context");
    new DockerImageAsset(stack, "Image", workerImageProps());
    // A stack needs one resource to pass the template validation.
    new CfnWaitConditionHandle(stack, "Placeholder");
    contextApp.synth();
    const manifest = JSON.parse(readFileSync(join(outdir, "Context.assets.json"), "utf8")) as {
      dockerImages: Record<string, { source: { directory: string } }>;
    };
    const [image] = Object.values(manifest.dockerImages);
    const staged = join(outdir, image?.source.directory ?? "(no image)");
    const top = readdirSync(staged).sort();

    it("holds what the Dockerfile copies, and not node_modules, cdk.out, .data, .git, tests or the API", () => {
      for (const name of [
        "node_modules",
        "cdk.out",
        ".data",
        ".git",
        "test",
        "infra",
        "local",
        "bench",
        "functions",
      ]) {
        expect(top).not.toContain(name);
      }
      expect(top).toEqual(
        expect.arrayContaining([
          "adapters",
          "containers",
          "core",
          "package.json",
          "package-lock.json",
          "runtime",
        ]),
      );
      expect(readdirSync(join(staged, "containers/worker"))).toContain("Dockerfile");
    });

    it("is derived from the Dockerfile's COPY lines, so every source the build copies is there", () => {
      const sources = workerContextExcludes()
        .filter((p) => p.startsWith("!"))
        .map((p) => p.slice(1));
      expect(workerContextExcludes()[0]).toBe("*");
      expect(sources).toEqual(
        expect.arrayContaining(["adapters", "core", "runtime", "containers", "scheduler.config.yaml"]),
      );
      for (const source of sources) expect(top).toContain(source);
    });
  });
});

describe("worker sizes", () => {
  it("knows Fargate's task sizes", () => {
    expect(fargateMemoryOptions(256)).toEqual([512, 1024, 2048]);
    expect(fargateMemoryOptions(1024)).toContain(2048);
    expect(fargateMemoryOptions(1024)).not.toContain(1024);
    expect(fargateMemoryOptions(300)).toEqual([]);
  });

  it("refuses a pool whose cpu/memory Fargate cannot run, naming the pool", () => {
    const configText =
      "pools:\n  - { name: odd, tool: claude, account: a, max_concurrency: 1, worker: { cpu: 1024, memory: 1024 } }\n";
    expect(() => synthSwitchyard({ configText })).toThrow(
      /pool odd: Fargate has no task size cpu 1024 \/ memory 1024/,
    );
  });
});
