/**
 * The runs of pod tasks. A container pool has no workers of its own: the pod launcher (on AWS a function
 * on the pool's queue) claims each dispatched run and starts its container, and the container's end comes
 * back as a PodStopped (EventBridge's "ECS Task State Change"), which settles the run through the same
 * settleRun as a CLI's. Nothing polls or heartbeats while a pod runs: its lease is its deadline, its
 * timeout plus the pool's lease_seconds for the start, and the tick stops a pod still running past it.
 */
import { poolConfig, type QueueMessageBody } from "./admission.ts";
import { commitChange } from "./commit.ts";
import type { Deps } from "./deps.ts";
import { claimRun, type HeldRun, type RunEnding, settleRun, TAIL_BYTES } from "./execution.ts";
import { taskUuidOfRun } from "./identifiers.ts";
import { stopPod } from "./pods.ts";
import { CommitConflict, type PodStopped } from "./ports.ts";
import type { Run, Task } from "./records.ts";
import { releaseHeldSlot } from "./tasks.ts";

/** The worker a pod's run records: its pool's launcher. */
export const POD_LAUNCHER = "pod-launcher";

/** Lost races the launch's record goes through before it leaves the run to the tick. */
const RACES = 5;

const secondsFrom = (now: Date, seconds: number) => new Date(now.getTime() + seconds * 1000).toISOString();

/** A pod run that failed without an exit code (it did not start, or timed out): retried as any failure. */
const failedRun = (error: string): RunEnding => ({
  kind: "finished",
  outcome: { exitCode: null, error, files: [], tail: "", durationMs: 0 },
});

/**
 * Takes one dispatch of a container pool: claims the run (a stale or duplicate dispatch is dropped), starts
 * its container, and records the container and the run's deadline. A container that cannot be started
 * fails the run. Returns what became of the dispatch.
 */
export async function launchPod(
  deps: Deps,
  message: Pick<QueueMessageBody, "task_uuid" | "run_id" | "snapshot">,
): Promise<"started" | "not started" | `dropped: ${string}`> {
  const claim = await claimRun(deps, message, POD_LAUNCHER);
  if (!claim.claimed) return `dropped: ${claim.reason}`;
  const { held } = claim;
  const { task, run } = held;
  if (!task.pod) {
    await settleRun(
      deps,
      held,
      failedRun(`task ${task.uuid} has no pod job: a container pool runs pods only`),
    );
    return "not started";
  }
  let containerId: string;
  try {
    ({ containerId } = await deps.containers.start({
      pool: task.pool,
      taskUuid: task.uuid,
      runId: run.run_id,
      pod: task.pod,
    }));
  } catch (err) {
    await settleRun(deps, held, failedRun(`the pod could not start: ${(err as Error).message}`));
    return "not started";
  }
  await recordLaunch(deps, held, containerId);
  return "started";
}

/**
 * The run gets its container, and the task its deadline. A pod that already ended has been settled: nothing
 * is left to record. A task canceled meanwhile may have been stopped before its container existed: it is
 * stopped now.
 */
async function recordLaunch(deps: Deps, held: HeldRun, containerId: string): Promise<void> {
  const deadline = secondsFrom(
    deps.clock.now(),
    held.task.timeout + poolConfig(deps, held.task.pool).lease_seconds,
  );
  let task: Task | undefined = held.task;
  let run: Run | undefined = held.run;
  for (let race = 0; race < RACES && task && run; race++) {
    if (task.status !== "running" || task.run_id !== run.run_id) {
      if (task.holds_slot && task.run_id === run.run_id) await stopPod(deps, task, "canceled");
      return;
    }
    try {
      await commitChange(
        deps,
        {
          tasks: [
            {
              next: { ...task, version: task.version + 1, lease_expires_at: deadline, due_time: deadline },
              expectVersion: task.version,
            },
          ],
          runs: [
            {
              next: { ...run, version: run.version + 1, container_id: containerId },
              expectVersion: run.version,
            },
          ],
        },
        { task, run },
      );
      return;
    } catch (err) {
      if (!(err instanceof CommitConflict)) throw err;
      [task, run] = await Promise.all([
        deps.tasks.getTask(task.uuid),
        deps.tasks.getRun(task.uuid, run.run_id),
      ]);
    }
  }
}

/**
 * A pod's container ended: its run is settled (exit code, why it stopped, how long it ran, the end of its
 * log), or, if its task was canceled while it ran, the slots it kept are freed. An end that arrives twice,
 * or after the tick ended the run, changes nothing.
 */
export async function settlePod(
  deps: Deps,
  stopped: PodStopped,
): Promise<"settled" | "released" | "dropped"> {
  const uuid = taskUuidOfRun(stopped.runId);
  if (!uuid) return "dropped";
  const [task, run] = await Promise.all([deps.tasks.getTask(uuid), deps.tasks.getRun(uuid, stopped.runId)]);
  if (!task || !run || task.run_id !== run.run_id) return "dropped";
  if (task.holds_slot) return (await releaseHeldSlot(deps, uuid, run.run_id)) ? "released" : "dropped";
  if (task.status !== "running") return "dropped";
  const tail = await deps.podLogs.tail(task.pool, stopped.containerId, TAIL_BYTES).catch((err: unknown) => {
    deps.log.warn("could not read the end of a pod's log", { run_id: run.run_id, error: String(err) });
    return "";
  });
  const settled = await settleRun(
    deps,
    { task, run: { ...run, container_id: stopped.containerId } },
    podEnding(stopped, tail),
  );
  return settled ? "settled" : "dropped";
}

/** A pod's end as a run's: exit code 0 succeeds; its output is the end of its log. */
function podEnding(stopped: PodStopped, tail: string): RunEnding {
  const error =
    stopped.exitCode === 0
      ? undefined
      : stopped.exitCode === null
        ? `the pod stopped without an exit code: ${stopped.reason ?? "no reason given"}`
        : `exit code ${stopped.exitCode}${stopped.reason ? `: ${stopped.reason}` : ""}`;
  return {
    kind: "finished",
    outcome: {
      exitCode: stopped.exitCode,
      ...(error === undefined ? {} : { error }),
      output: tail.trim() || undefined,
      files: [],
      tail,
      durationMs: stopped.durationMs,
    },
  };
}

/**
 * The tick found a pod's deadline passed: its container is stopped and its run ends, timed out (or lost,
 * when its launch was never recorded), to be retried or failed. A deadline moved meanwhile (the launch
 * was recorded after the tick read the task) changes nothing.
 */
export async function reclaimPod(deps: Deps, due: Task): Promise<boolean> {
  const task = await deps.tasks.getTask(due.uuid);
  const run = task?.run_id ? await deps.tasks.getRun(task.uuid, task.run_id) : undefined;
  if (!task || !run || task.status !== "running") return false;
  if ((task.lease_expires_at ?? "") > deps.clock.now().toISOString()) return false;
  await stopPod(deps, task, "its deadline passed");
  const ending: RunEnding = run.container_id
    ? failedRun(`timed out after ${task.timeout} s: the pod was stopped`)
    : { kind: "lost", reason: "the pod's launch was not recorded by its deadline: it was stopped" };
  return (await settleRun(deps, { task, run }, ending)) !== undefined;
}
