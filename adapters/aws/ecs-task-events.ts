import * as z from "zod";
import { POD_CONTAINER, POD_RUN_VARIABLES } from "../../core/pods.ts";
import type { PodStopped } from "../../core/ports.ts";

/** The id of an ECS task: the last part of its ARN. */
export const ecsTaskId = (taskArn: string) => taskArn.slice(taskArn.lastIndexOf("/") + 1);

/** The part of EventBridge's "ECS Task State Change" detail that a pod's end is read from. */
const taskStateChange = z.object({
  taskArn: z.string(),
  lastStatus: z.string(),
  stoppedReason: z.string().optional(),
  startedAt: z.string().optional(),
  stoppedAt: z.string().optional(),
  containers: z
    .array(z.object({ name: z.string(), exitCode: z.number().optional(), reason: z.string().optional() }))
    .default([]),
  overrides: z
    .object({
      containerOverrides: z
        .array(
          z.object({
            name: z.string(),
            environment: z.array(z.object({ name: z.string(), value: z.string().optional() })).default([]),
          }),
        )
        .default([]),
    })
    .optional(),
});

/**
 * A pod's end from an "ECS Task State Change" event's detail: undefined for any other state, or a task
 * that is not a pod run (it carries no run id in its overrides).
 */
export function podStoppedFrom(detail: unknown): PodStopped | undefined {
  const parsed = taskStateChange.safeParse(detail);
  if (!parsed.success || parsed.data.lastStatus !== "STOPPED") return undefined;
  const task = parsed.data;
  const job = task.overrides?.containerOverrides.find((c) => c.name === POD_CONTAINER);
  const runId = job?.environment.find((e) => e.name === POD_RUN_VARIABLES.runId)?.value;
  if (!runId) return undefined;
  const container = task.containers.find((c) => c.name === POD_CONTAINER);
  const exitCode = container?.exitCode ?? null;
  const started = Date.parse(task.startedAt ?? "");
  const stopped = Date.parse(task.stoppedAt ?? "");
  // An exit by itself needs no reason; anything else (a stop, an image that cannot be pulled) says why.
  const reason = exitCode === null ? (container?.reason ?? task.stoppedReason) : container?.reason;
  return {
    runId,
    containerId: ecsTaskId(task.taskArn),
    exitCode,
    ...(reason ? { reason } : {}),
    durationMs: Number.isFinite(started) && Number.isFinite(stopped) ? stopped - started : 0,
  };
}
