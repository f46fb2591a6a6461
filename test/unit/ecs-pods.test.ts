import {
  CloudWatchLogsClient,
  GetLogEventsCommand,
  ResourceNotFoundException,
} from "@aws-sdk/client-cloudwatch-logs";
import {
  ClientException,
  DescribeTaskDefinitionCommand,
  ECSClient,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  StopTaskCommand,
} from "@aws-sdk/client-ecs";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { CloudWatchPodLogs } from "../../adapters/aws/cloudwatch-pod-logs.ts";
import { EcsContainerRunner, startedByOf } from "../../adapters/aws/ecs-pods.ts";
import { podStoppedFrom } from "../../adapters/aws/ecs-task-events.ts";
import type { PodSettings } from "../../adapters/aws/pod-settings.ts";
import type { PodLaunch } from "../../core/ports.ts";

const CLUSTER = "arn:aws:ecs:eu-west-1:123456789012:cluster/switchyard";
const SETTINGS: PodSettings = {
  cluster: CLUSTER,
  subnets: ["subnet-a", "subnet-b"],
  security_groups: ["sg-pods"],
  execution_role_arn: "arn:aws:iam::123456789012:role/pod-execution",
  task_role_arn: "arn:aws:iam::123456789012:role/pod-task",
  log_groups: { pods: "/switchyard/pods" },
  region: "eu-west-1",
};
const TASK_UUID = "0f8fad5b-d9cb-469f-a165-70867728950e";
const launch = (runNumber: number, fields: Partial<PodLaunch["pod"]> = {}): PodLaunch => ({
  pool: "pods",
  taskUuid: TASK_UUID,
  runId: `${TASK_UUID}-r00000${runNumber}`,
  pod: {
    image: "alpine:3",
    command: ["sh", "-c"],
    args: ["echo hi"],
    env: { A: "1" },
    cpu: 512,
    memory: 1024,
    ...fields,
  },
});
const taskArn = (id: string) => `arn:aws:ecs:eu-west-1:123456789012:task/switchyard/${id}`;

const ecs = mockClient(ECSClient);
const logs = mockClient(CloudWatchLogsClient);
afterEach(() => {
  ecs.reset();
  logs.reset();
});
const runner = () => new EcsContainerRunner(new ECSClient({ region: "eu-west-1" }), SETTINGS);
const inputs = <T>(command: new (...args: never[]) => T) =>
  ecs.commandCalls(command as never).map((call) => (call.args[0] as { input: unknown }).input);

describe("EcsContainerRunner", () => {
  it("registers a pod's task definition once per digest, and runs each run once by its client token", async () => {
    ecs
      .on(DescribeTaskDefinitionCommand)
      .rejects(new ClientException({ message: "Unable to describe task definition.", $metadata: {} }));
    ecs.on(RegisterTaskDefinitionCommand).callsFake((input: { family: string }) => ({
      taskDefinition: {
        taskDefinitionArn: `arn:aws:ecs:eu-west-1:123456789012:task-definition/${input.family}:1`,
      },
    }));
    ecs
      .on(RunTaskCommand)
      .resolvesOnce({ tasks: [{ taskArn: taskArn("aaa111") }] })
      .resolves({ tasks: [{ taskArn: taskArn("bbb222") }] });
    const pods = runner();
    expect(await pods.start(launch(1))).toEqual({ containerId: "aaa111" });
    // The same image, entry point and size: the same definition, not registered again.
    expect(await pods.start(launch(2, { args: ["echo other"], env: {} }))).toEqual({ containerId: "bbb222" });

    const [registered] = inputs(RegisterTaskDefinitionCommand);
    expect(inputs(RegisterTaskDefinitionCommand)).toHaveLength(1);
    expect(registered).toEqual({
      family: expect.stringMatching(/^switchyard-pods-[0-9a-f]{16}$/),
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: "512",
      memory: "1024",
      executionRoleArn: SETTINGS.execution_role_arn,
      taskRoleArn: SETTINGS.task_role_arn,
      runtimePlatform: { cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" },
      containerDefinitions: [
        {
          name: "job",
          image: "alpine:3",
          essential: true,
          entryPoint: ["sh", "-c"],
          stopTimeout: 10,
          logConfiguration: {
            logDriver: "awslogs",
            options: {
              "awslogs-group": "/switchyard/pods",
              "awslogs-region": "eu-west-1",
              "awslogs-stream-prefix": "pod",
            },
          },
        },
      ],
    });
    const family = (registered as { family: string }).family;
    expect(inputs(RunTaskCommand)[0]).toEqual({
      cluster: CLUSTER,
      taskDefinition: `arn:aws:ecs:eu-west-1:123456789012:task-definition/${family}:1`,
      launchType: "FARGATE",
      count: 1,
      clientToken: `${TASK_UUID}-r000001`,
      startedBy: startedByOf(`${TASK_UUID}-r000001`),
      group: "switchyard:pods",
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: ["subnet-a", "subnet-b"],
          securityGroups: ["sg-pods"],
          assignPublicIp: "ENABLED",
        },
      },
      overrides: {
        containerOverrides: [
          {
            name: "job",
            command: ["echo hi"],
            environment: [
              { name: "A", value: "1" },
              { name: "SWITCHYARD_TASK_UUID", value: TASK_UUID },
              { name: "SWITCHYARD_RUN_ID", value: `${TASK_UUID}-r000001` },
            ],
          },
        ],
      },
    });
    expect(startedByOf(`${TASK_UUID}-r000001`)).toMatch(/^[A-Za-z0-9_-]{36}$/);
  });

  it("uses a definition ECS already has (after a restart), and another for another image or size", async () => {
    ecs.on(DescribeTaskDefinitionCommand).resolves({
      taskDefinition: { status: "ACTIVE", taskDefinitionArn: "arn:td/known:3" },
    });
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: taskArn("ccc") }] });
    const pods = runner();
    for (const l of [
      launch(1),
      launch(2),
      launch(3, { cpu: 1024, memory: 2048 }),
      launch(4, { image: "busybox" }),
    ]) {
      await pods.start(l);
    }
    expect(inputs(RegisterTaskDefinitionCommand)).toEqual([]);
    expect(inputs(RunTaskCommand).map((i) => (i as { taskDefinition: string }).taskDefinition)).toEqual(
      Array(4).fill("arn:td/known:3"),
    );
    // Described once per definition: the second run of the same pod is served from the cache.
    const described = inputs(DescribeTaskDefinitionCommand).map(
      (i) => (i as { taskDefinition: string }).taskDefinition,
    );
    expect(described).toHaveLength(3);
    expect(new Set(described).size).toBe(3);
  });

  it("rejects with ECS's reason when RunTask starts nothing", async () => {
    ecs
      .on(DescribeTaskDefinitionCommand)
      .resolves({ taskDefinition: { status: "ACTIVE", taskDefinitionArn: "arn:td/x:1" } });
    ecs
      .on(RunTaskCommand)
      .resolves({ tasks: [], failures: [{ reason: "RESOURCE:ENI", detail: "no free ENI" }] });
    await expect(runner().start(launch(1))).rejects.toThrow(
      "ECS started no task: RESOURCE:ENI (no free ENI)",
    );
  });

  it("stops a run's ECS tasks, found by its mark, with the reason", async () => {
    ecs.on(ListTasksCommand).resolves({ taskArns: [taskArn("aaa111")] });
    ecs.on(StopTaskCommand).resolves({});
    await runner().stop("pods", `${TASK_UUID}-r000001`, "canceled");
    expect(inputs(ListTasksCommand)).toEqual([
      { cluster: CLUSTER, startedBy: startedByOf(`${TASK_UUID}-r000001`), desiredStatus: "RUNNING" },
    ]);
    expect(inputs(StopTaskCommand)).toEqual([
      { cluster: CLUSTER, task: taskArn("aaa111"), reason: "Switchyard: canceled" },
    ]);
  });
});

/** An "ECS Task State Change" detail as EventBridge delivers it (trimmed to the fields ECS always sets). */
const detail = (fields: object = {}) => ({
  clusterArn: CLUSTER,
  taskArn: taskArn("aaa111"),
  lastStatus: "STOPPED",
  desiredStatus: "STOPPED",
  group: "switchyard:pods",
  startedAt: "2026-12-02T10:00:00.000Z",
  stoppedAt: "2026-12-02T10:00:42.500Z",
  stopCode: "EssentialContainerExited",
  stoppedReason: "Essential container in task exited",
  containers: [{ name: "job", lastStatus: "STOPPED", exitCode: 3 }],
  overrides: {
    containerOverrides: [
      { name: "job", environment: [{ name: "SWITCHYARD_RUN_ID", value: `${TASK_UUID}-r000001` }] },
    ],
  },
  ...fields,
});

describe("a pod's end from ECS's task state change", () => {
  it("gives the run, container, exit code and run time of a stopped pod", () => {
    expect(podStoppedFrom(detail())).toEqual({
      runId: `${TASK_UUID}-r000001`,
      containerId: "aaa111",
      exitCode: 3,
      durationMs: 42_500,
    });
  });

  it("says why a pod stopped without an exit code, and ignores what is not a stopped pod", () => {
    const unpulled = detail({
      startedAt: undefined,
      stopCode: "TaskFailedToStart",
      stoppedReason: "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
      containers: [{ name: "job", lastStatus: "STOPPED", reason: "CannotPullContainerError: not found" }],
    });
    expect(podStoppedFrom(unpulled)).toMatchObject({
      exitCode: null,
      reason: "CannotPullContainerError: not found",
      durationMs: 0,
    });
    expect(podStoppedFrom(detail({ lastStatus: "RUNNING" }))).toBeUndefined();
    expect(podStoppedFrom(detail({ overrides: { containerOverrides: [] } }))).toBeUndefined();
    expect(podStoppedFrom({ unrelated: true })).toBeUndefined();
  });
});

describe("CloudWatchPodLogs", () => {
  const stream = { logGroupName: "/switchyard/pods", logStreamName: "pod/job/aaa111" };
  const reader = () =>
    new CloudWatchPodLogs(new CloudWatchLogsClient({ region: "eu-west-1" }), SETTINGS.log_groups);

  it("reads a pod's stream from its head, page after page, until a page brings nothing new", async () => {
    logs
      .on(GetLogEventsCommand)
      .resolvesOnce({ events: [{ message: "one" }, { message: "two" }], nextForwardToken: "f/1" })
      .resolvesOnce({ events: [{ message: "three" }], nextForwardToken: "f/2" })
      .resolves({ events: [], nextForwardToken: "f/2" });
    expect(await reader().read("pods", "aaa111", 1024)).toBe("one\ntwo\nthree\n");
    expect(logs.commandCalls(GetLogEventsCommand).map((c) => c.args[0].input)).toEqual([
      { ...stream, startFromHead: true, nextToken: undefined },
      { ...stream, startFromHead: true, nextToken: "f/1" },
      { ...stream, startFromHead: true, nextToken: "f/2" },
    ]);
  });

  it("reads the end of a stream for a run's tail, and nothing where there is no stream yet", async () => {
    logs
      .on(GetLogEventsCommand, { startFromHead: false })
      .resolves({ events: [{ message: "x".repeat(50) }, { message: "end" }] });
    expect(await reader().tail("pods", "aaa111", 10)).toBe("[truncated]…xxxxx\nend\n");
    logs.reset();
    logs
      .on(GetLogEventsCommand)
      .rejects(
        new ResourceNotFoundException({ message: "The specified log stream does not exist.", $metadata: {} }),
      );
    expect(await reader().read("pods", "zzz", 1024)).toBe("");
  });
});
