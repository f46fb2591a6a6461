import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { constants } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jobEnvironment } from "../containers/worker/job-runner.ts";
import { killGroup } from "../containers/worker/process-group.ts";
import { prepareWorkDir, removeWorkDir } from "../containers/worker/work-dir.ts";
import type { Deps } from "../core/deps.ts";
import { truncate } from "../core/execution.ts";
import { containerOverrides, POD_CONTAINER } from "../core/pods.ts";
import type { ContainerRunner, PodLaunch, PodLogs } from "../core/ports.ts";
import type { EcsTaskStateChange } from "../functions/pod-events.ts";

const CLUSTER_ARN = "arn:aws:ecs:local:000000000000:cluster/switchyard";
/** A stopped pod's SIGTERM, then SIGKILL this long after (the ECS adapter's stopTimeout). */
const KILL_GRACE_MS = 2000;
/** EventBridge tries a failed delivery again; so does this, a second apart. */
const DELIVERY_TRIES = 5;

export interface LocalPodRunnerOptions {
  /** Where the pods' logs are written (the local CloudWatch Logs). */
  logDir: string;
  /** The pod events function (functions/pod-events.ts), called with each pod's end as EventBridge would. */
  deliver: (event: EcsTaskStateChange) => Promise<unknown>;
  log: Deps["log"];
}

interface LocalPod {
  containerId: string;
  taskArn: string;
  pid?: number;
  stopReason?: string;
}

/**
 * Locally, ECS RunTask: a pod's entry point and args run as a child process in a work dir and environment
 * made by the rules of a CLI job's, with the run's overrides applied as ECS applies them. The image is
 * named in the log, not pulled. The output goes to a file per container (the local log stream), and the
 * end goes to the pod events handler as an "ECS Task State Change". Nothing of the scheduler is decided
 * here: deadlines, retries and cancels are the core's.
 */
export class LocalPodRunner implements ContainerRunner, PodLogs {
  private readonly pods = new Map<string, LocalPod>();

  constructor(private readonly options: LocalPodRunnerOptions) {}

  async start(launch: PodLaunch): Promise<{ containerId: string }> {
    const known = this.pods.get(launch.runId);
    if (known) return { containerId: known.containerId };
    const containerId = randomUUID().replaceAll("-", "");
    const pod: LocalPod = {
      containerId,
      taskArn: `arn:aws:ecs:local:000000000000:task/switchyard/${containerId}`,
    };
    this.pods.set(launch.runId, pod);
    const [override] = containerOverrides(launch.pod, launch).containerOverrides;
    const argv = [...launch.pod.command, ...(override.command ?? [])];
    mkdirSync(join(this.options.logDir, launch.pool), { recursive: true });
    const out = openSync(this.logPath(launch.pool, containerId), "a");
    writeSync(
      out,
      `[switchyard] image ${launch.pod.image}: not pulled, the local stack runs the pod's command here\n`,
    );
    const startedAt = new Date();
    const [executable, ...args] = argv;
    if (executable === undefined) {
      closeSync(out);
      this.stopped(
        launch,
        pod,
        {
          exitCode: null,
          reason: "CannotStartContainerError: locally a pod needs a command or args (no image runs here)",
        },
        startedAt,
      );
      return { containerId };
    }
    const dir = await prepareWorkDir([], []);
    const env = jobEnvironment(dir, {
      env: Object.fromEntries(override.environment.map((e) => [e.name, e.value])),
    });
    const child = spawn(executable, args, {
      cwd: dir.work,
      env,
      detached: true,
      stdio: ["ignore", out, out],
    });
    pod.pid = child.pid;
    const ended = (ending: { exitCode: number | null; reason?: string }) => {
      closeSync(out);
      void (child.pid === undefined ? Promise.resolve() : killGroup(child.pid, 0))
        .then(() => removeWorkDir(dir))
        .finally(() => this.stopped(launch, pod, ending, startedAt));
    };
    child.once("error", (err) =>
      ended({ exitCode: null, reason: `CannotStartContainerError: ${err.message}` }),
    );
    child.once("exit", (code, signal) =>
      // As Docker reports it: a process killed by a signal exits 128 + the signal's number.
      ended({ exitCode: code ?? 128 + (signal ? constants.signals[signal] : 0) }),
    );
    return { containerId };
  }

  async stop(_pool: string, runId: string, reason: string): Promise<void> {
    const pod = this.pods.get(runId);
    if (pod?.pid === undefined || pod.stopReason !== undefined) return;
    pod.stopReason = `Switchyard: ${reason}`;
    await killGroup(pod.pid, KILL_GRACE_MS);
  }

  async read(pool: string, containerId: string, maxBytes: number): Promise<string> {
    return truncate(await this.logOf(pool, containerId), maxBytes);
  }

  async tail(pool: string, containerId: string, maxBytes: number): Promise<string> {
    return truncate(await this.logOf(pool, containerId), maxBytes, "end");
  }

  /** Kills every pod still running (the stack is stopping, as a cluster's tasks end with it). */
  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.pods.entries()].map(([runId]) => this.stop("", runId, "the local stack stopped")),
    );
  }

  private logPath(pool: string, containerId: string) {
    return join(this.options.logDir, pool, `${containerId}.log`);
  }

  private async logOf(pool: string, containerId: string): Promise<string> {
    if (!/^[0-9a-f]{32}$/.test(containerId)) return "";
    return readFile(this.logPath(pool, containerId), "utf8").catch(() => "");
  }

  /** The pod's end as EventBridge delivers it, tried again as EventBridge would on a failure. */
  private stopped(
    launch: PodLaunch,
    pod: LocalPod,
    ending: { exitCode: number | null; reason?: string },
    startedAt: Date,
  ): void {
    const event = stateChange(launch, pod, ending, startedAt, new Date());
    void (async () => {
      for (let tries = 1; ; tries++) {
        try {
          await this.options.deliver(event);
          return;
        } catch (err) {
          if (tries >= DELIVERY_TRIES) {
            this.options.log.error("a pod's end was not delivered", {
              run_id: launch.runId,
              error: String(err),
            });
            return;
          }
          await sleep(1000);
        }
      }
    })();
  }
}

/** EventBridge's "ECS Task State Change" for a stopped task, with the fields ECS sets. */
function stateChange(
  launch: PodLaunch,
  pod: LocalPod,
  ending: { exitCode: number | null; reason?: string },
  startedAt: Date,
  stoppedAt: Date,
): EcsTaskStateChange {
  const { containerOverrides: overrides } = containerOverrides(launch.pod, {
    taskUuid: launch.taskUuid,
    runId: launch.runId,
  });
  return {
    version: "0",
    id: randomUUID(),
    "detail-type": "ECS Task State Change",
    source: "aws.ecs",
    account: "000000000000",
    time: stoppedAt.toISOString(),
    region: "local",
    resources: [pod.taskArn],
    detail: {
      clusterArn: CLUSTER_ARN,
      taskArn: pod.taskArn,
      group: `switchyard:${launch.pool}`,
      lastStatus: "STOPPED",
      desiredStatus: "STOPPED",
      stopCode: pod.stopReason ? "UserInitiated" : "EssentialContainerExited",
      stoppedReason: pod.stopReason ?? "Essential container in task exited",
      createdAt: startedAt.toISOString(),
      startedAt: startedAt.toISOString(),
      stoppedAt: stoppedAt.toISOString(),
      containers: [
        {
          name: POD_CONTAINER,
          lastStatus: "STOPPED",
          ...(ending.exitCode === null ? {} : { exitCode: ending.exitCode }),
          ...(ending.reason ? { reason: ending.reason } : {}),
        },
      ],
      overrides: { containerOverrides: overrides },
    },
  };
}
