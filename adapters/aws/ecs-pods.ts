import { createHash } from "node:crypto";
import {
  ClientException,
  DescribeTaskDefinitionCommand,
  type ECSClient,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  type RegisterTaskDefinitionCommandInput,
  RunTaskCommand,
  StopTaskCommand,
} from "@aws-sdk/client-ecs";
import { containerOverrides, POD_CONTAINER } from "../../core/pods.ts";
import type { ContainerRunner, PodLaunch } from "../../core/ports.ts";
import { ecsTaskId } from "./ecs-task-events.ts";
import type { PodSettings } from "./pod-settings.ts";

/** The stream prefix of pod logs: a container's stream is `pod/job/<ECS task id>`. */
const LOG_PREFIX = "pod";
export const podLogStream = (containerId: string) => `${LOG_PREFIX}/${POD_CONTAINER}/${containerId}`;

/**
 * A run's mark on its ECS task, for ListTasks: `startedBy` takes 36 characters, fewer than a run id, so
 * it holds a digest of it (base64url is within its alphabet of letters, digits, `-`, `_` and `/`).
 */
export const startedByOf = (runId: string) =>
  createHash("sha256").update(runId).digest("base64url").slice(0, 36);

/**
 * Pods as ECS tasks on Fargate. A task definition per (pool, image, entry point, size), named by a digest
 * of its content and registered on first use; RunTask with the run id as its client token (a retried
 * launch starts nothing more), the args and env as overrides; StopTask by the run's mark.
 */
export class EcsContainerRunner implements ContainerRunner {
  /** Digest family -> its registered task definition ARN. */
  private readonly definitions = new Map<string, string>();

  constructor(
    private readonly ecs: ECSClient,
    private readonly settings: PodSettings,
  ) {}

  async start(launch: PodLaunch): Promise<{ containerId: string }> {
    const taskDefinition = await this.definitionFor(launch);
    const ids = { taskUuid: launch.taskUuid, runId: launch.runId };
    const out = await this.ecs.send(
      new RunTaskCommand({
        cluster: this.settings.cluster,
        taskDefinition,
        launchType: "FARGATE",
        count: 1,
        clientToken: launch.runId,
        startedBy: startedByOf(launch.runId),
        group: `switchyard:${launch.pool}`,
        networkConfiguration: {
          awsvpcConfiguration: {
            subnets: this.settings.subnets,
            securityGroups: this.settings.security_groups,
            // Public subnets without a NAT gateway: a pod reaches its registry and the internet this way.
            assignPublicIp: "ENABLED",
          },
        },
        overrides: containerOverrides(launch.pod, ids),
      }),
    );
    const arn = out.tasks?.[0]?.taskArn;
    if (!arn) {
      const failure = out.failures?.[0];
      throw new Error(
        `ECS started no task: ${failure?.reason ?? "no reason given"}${failure?.detail ? ` (${failure.detail})` : ""}`,
      );
    }
    return { containerId: ecsTaskId(arn) };
  }

  async stop(_pool: string, runId: string, reason: string): Promise<void> {
    const { taskArns = [] } = await this.ecs.send(
      new ListTasksCommand({
        cluster: this.settings.cluster,
        startedBy: startedByOf(runId),
        desiredStatus: "RUNNING",
      }),
    );
    await Promise.all(
      taskArns.map((task) =>
        this.ecs.send(
          new StopTaskCommand({
            cluster: this.settings.cluster,
            task,
            reason: `Switchyard: ${reason}`.slice(0, 255),
          }),
        ),
      ),
    );
  }

  /** The launch's task definition: registered once per digest, found again by its family after a restart. */
  private async definitionFor(launch: PodLaunch): Promise<string> {
    const definition = this.definitionOf(launch);
    const digest = createHash("sha256").update(JSON.stringify(definition)).digest("hex").slice(0, 16);
    const family = `switchyard-${launch.pool}-${digest}`;
    const known = this.definitions.get(family);
    if (known) return known;
    let arn: string | undefined;
    try {
      const found = await this.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: family }));
      arn = found.taskDefinition?.status === "ACTIVE" ? found.taskDefinition.taskDefinitionArn : undefined;
    } catch (err) {
      // ECS answers a family it does not know with a ClientException.
      if (!(err instanceof ClientException)) throw err;
    }
    arn ??= (await this.ecs.send(new RegisterTaskDefinitionCommand({ family, ...definition }))).taskDefinition
      ?.taskDefinitionArn;
    if (!arn) throw new Error(`ECS registered no task definition ${family}`);
    this.definitions.set(family, arn);
    return arn;
  }

  private definitionOf({ pool, pod }: PodLaunch): Omit<RegisterTaskDefinitionCommandInput, "family"> {
    const logGroup = this.settings.log_groups[pool];
    if (!logGroup)
      throw new Error(`pool ${pool} has no pod log group: is it a container pool of this stack?`);
    return {
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: String(pod.cpu),
      memory: String(pod.memory),
      executionRoleArn: this.settings.execution_role_arn,
      taskRoleArn: this.settings.task_role_arn,
      runtimePlatform: { cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" },
      containerDefinitions: [
        {
          name: POD_CONTAINER,
          image: pod.image,
          essential: true,
          ...(pod.command.length > 0 ? { entryPoint: pod.command } : {}),
          // A stopped pod gets this long after SIGTERM before SIGKILL.
          stopTimeout: POD_STOP_TIMEOUT_SECONDS,
          logConfiguration: {
            logDriver: "awslogs",
            options: {
              "awslogs-group": logGroup,
              "awslogs-region": this.settings.region,
              "awslogs-stream-prefix": LOG_PREFIX,
            },
          },
        },
      ],
    };
  }
}

/** Between SIGTERM and SIGKILL of a stopped pod (ECS's default is 30 s). */
const POD_STOP_TIMEOUT_SECONDS = 10;
