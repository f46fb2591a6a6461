/**
 * Pod jobs: the container jobs a `pod` template renders to, run by a pool with `tool: container` (on AWS by
 * ECS RunTask on Fargate). Their rules live here: the job's shape, the sizes Fargate runs, the quotas that
 * pick one, and the size of what ECS is handed per run.
 */
import * as z from "zod";
import type { Deps } from "./deps.ts";
import { ValidationError } from "./errors.ts";
import { LIMITS } from "./fields.ts";
import type { Task } from "./records.ts";

/** Fargate's valid memory sizes (MiB) for each task CPU size (CPU units, 1,024 to a vCPU). */
export function fargateMemoryOptions(cpu: number): number[] {
  const range = (min: number, max: number, step: number) =>
    Array.from({ length: (max - min) / step + 1 }, (_, i) => min + i * step);
  const options: Record<number, number[]> = {
    256: [512, 1024, 2048],
    512: range(1024, 4096, 1024),
    1024: range(2048, 8192, 1024),
    2048: range(4096, 16384, 1024),
    4096: range(8192, 30720, 1024),
    8192: range(16384, 61440, 4096),
    16384: range(32768, 122880, 8192),
  };
  return options[cpu] ?? [];
}
const FARGATE_CPUS = [256, 512, 1024, 2048, 4096, 8192, 16384];

/** A pod's CPU when neither its template nor its quotas give one: Fargate's smallest (a quarter vCPU). */
const DEFAULT_POD_CPU = 256;

/** CPU as Kubernetes writes it: vCPUs (`0.5`, `"2"`) or millicores (`"500m"`); in CPU units. */
const cpuQuantity = z
  .union([
    z.number().positive(),
    z.string().regex(/^\d+(\.\d+)?m?$/, 'must be vCPUs ("0.5", 2) or millicores ("500m")'),
  ])
  .transform((q) => {
    const text = String(q);
    const vcpus = text.endsWith("m") ? Number(text.slice(0, -1)) / 1000 : Number(text);
    return Math.round(vcpus * 1024);
  });

/** Memory as MiB (a number) or a binary quantity (`"512Mi"`, `"2Gi"`); in MiB. */
const memoryQuantity = z
  .union([
    z.number().int().positive(),
    z.string().regex(/^\d+(Mi|Gi)?$/, 'must be MiB (2048) or "512Mi", "2Gi"'),
  ])
  .transform((q) => {
    const text = String(q);
    return text.endsWith("Gi") ? Number(text.slice(0, -2)) * 1024 : Number(text.replace(/Mi$/, ""));
  });

/** A submission's `quotas`: the pod's size, over its template's. */
export const podQuotas = z.strictObject({
  cpu: cpuQuantity.optional(),
  memory: memoryQuantity.optional(),
  gpu: z.number().int().min(0).max(8).optional(),
});
export type PodQuotas = z.output<typeof podQuotas>;

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable's name");

/**
 * The pod job a `pod` template renders to. `command` replaces the image's entry point and `args` its
 * command, as in Kubernetes; without them the image's own apply.
 */
export const podJob = z.strictObject({
  image: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/, "must be an image reference (repository[:tag][@digest])"),
  command: z.array(z.string().max(LIMITS.promptBytes)).max(100).default([]),
  args: z.array(z.string().max(LIMITS.promptBytes)).max(1000).default([]),
  env: z.record(envName, z.string()).default({}),
  cpu: cpuQuantity.optional(),
  memory: memoryQuantity.optional(),
  timeout: z.number().int().min(1).max(LIMITS.timeoutSeconds).optional(),
});
export type PodJob = z.output<typeof podJob>;

/** A pod task's container, as stored on the task: what to run, and its Fargate size. */
export const podSpecSchema = z.object({
  image: z.string(),
  command: z.array(z.string()),
  args: z.array(z.string()),
  env: z.record(z.string(), z.string()),
  /** CPU units (1,024 to a vCPU) and MiB: one of Fargate's sizes. */
  cpu: z.number(),
  memory: z.number(),
});
export type PodSpec = z.infer<typeof podSpecSchema>;

/** The name of the job's container in its task definition (and in ECS's events). */
export const POD_CONTAINER = "job";

/** What ECS takes per RunTask in its overrides, JSON-encoded. */
export const ECS_OVERRIDES_MAX_CHARS = 8192;

/** What a run's container learns of its run, beside the job's own env (its end is matched to it by these). */
export const POD_RUN_VARIABLES = { taskUuid: "SWITCHYARD_TASK_UUID", runId: "SWITCHYARD_RUN_ID" } as const;
const podRunEnv = (ids: { taskUuid: string; runId: string }) => ({
  [POD_RUN_VARIABLES.taskUuid]: ids.taskUuid,
  [POD_RUN_VARIABLES.runId]: ids.runId,
});

/** The job container's override: ECS's ContainerOverride, the fields a pod's run sets. */
export interface PodOverride {
  name: string;
  command?: string[];
  environment: { name: string; value: string }[];
}

/**
 * The per-run part of a pod's launch (ECS's RunTask `overrides`): its args as the container's command,
 * and its env. The image, entry point and size are the task definition's.
 */
export function containerOverrides(
  pod: PodSpec,
  ids: { taskUuid: string; runId: string },
): { containerOverrides: [PodOverride] } {
  const env = { ...pod.env, ...podRunEnv(ids) };
  return {
    containerOverrides: [
      {
        name: POD_CONTAINER,
        ...(pod.args.length > 0 ? { command: pod.args } : {}),
        environment: Object.entries(env).map(([name, value]) => ({ name, value })),
      },
    ],
  };
}

/** A run id's length (runIdFor): the overrides of a pod are measured with one as long. */
const SAMPLE_IDS = { taskUuid: "00000000-0000-0000-0000-000000000000", runId: `${"0".repeat(36)}-r000000` };

/**
 * The pod a submission runs: the rendered job, sized by the submission's quotas over the job's own size
 * over the default. A size Fargate does not run, a GPU, or overrides past ECS's limit is a 400.
 */
export function podSpecOf(job: PodJob, quotas: PodQuotas | undefined): PodSpec {
  const field = quotas ? "quotas" : "template";
  if (quotas?.gpu) {
    throw new ValidationError("quotas.gpu", "no pool has GPU capacity: Fargate runs no GPUs");
  }
  const cpu = quotas?.cpu ?? job.cpu ?? DEFAULT_POD_CPU;
  // Without a memory size: Fargate's least for the CPU (2 MiB a unit).
  const memory = quotas?.memory ?? job.memory ?? 2 * cpu;
  if (!FARGATE_CPUS.includes(cpu)) {
    throw new ValidationError(
      field,
      `cpu ${cpu / 1024} vCPU is not a Fargate size: give 0.25, 0.5, 1, 2, 4, 8 or 16`,
    );
  }
  const memories = fargateMemoryOptions(cpu);
  if (!memories.includes(memory)) {
    throw new ValidationError(
      field,
      `memory ${memory} MiB does not go with ${cpu / 1024} vCPU on Fargate: give one of ${memories.join(", ")} MiB`,
    );
  }
  const pod: PodSpec = { image: job.image, command: job.command, args: job.args, env: job.env, cpu, memory };
  const chars = JSON.stringify(containerOverrides(pod, SAMPLE_IDS)).length;
  if (chars > ECS_OVERRIDES_MAX_CHARS) {
    throw new ValidationError(
      "template",
      `the pod's args and env take ${chars} characters; ECS takes ${ECS_OVERRIDES_MAX_CHARS} per run`,
    );
  }
  return pod;
}

/** Stops the container of a pod task's current run, if one runs (idempotent); a CLI task has none. */
export async function stopPod(deps: Pick<Deps, "containers">, task: Task, reason: string): Promise<void> {
  if (task.tool === "container" && task.run_id) await deps.containers.stop(task.pool, task.run_id, reason);
}
