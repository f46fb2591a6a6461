import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Annotations, IgnoreMode } from "aws-cdk-lib";
import { type DockerImageAssetProps, Platform } from "aws-cdk-lib/aws-ecr-assets";
import type { Construct } from "constructs";
import { PROJECT_ROOT } from "./switchyard-function.ts";

/** The worker's Dockerfile, relative to the repository root (its build context). */
export const WORKER_DOCKERFILE = "containers/worker/Dockerfile";
/** Where the Dockerfile puts the scheduler config inside the image. */
export const WORKER_CONFIG_PATH = "/app/scheduler.config.yaml";

/**
 * The Docker build context, as exclude patterns: everything but what the Dockerfile COPYs from it.
 * CDK stages (copies) the context into cdk.out at synth and fingerprints it: an allow-list keeps
 * node_modules, cdk.out, .data and .git out, and keeps README or test edits from changing the image hash
 * (which would roll every worker). It is read from the Dockerfile, so the two cannot drift apart.
 */
export function workerContextExcludes(dockerfile = resolve(PROJECT_ROOT, WORKER_DOCKERFILE)): string[] {
  const sources = readFileSync(dockerfile, "utf8")
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([instruction, ...args]) => instruction?.toUpperCase() === "COPY" && !args.some(isFromStage))
    .flatMap(([, ...args]) => args.filter((arg) => !arg.startsWith("--")).slice(0, -1))
    .map((source) => source.replace(/^\.\//, "").replace(/\/$/, ""));
  return ["*", ...new Set(sources)].map((source, i) => (i === 0 ? source : `!${source}`));
}
const isFromStage = (arg: string) => arg.startsWith("--from=");

/** The worker image: built from the repository root for ARM64 (Graviton Fargate), by `cdk deploy` only. */
export const workerImageProps = (): DockerImageAssetProps => ({
  directory: PROJECT_ROOT,
  file: WORKER_DOCKERFILE,
  platform: Platform.LINUX_ARM64,
  ignoreMode: IgnoreMode.DOCKER,
  exclude: workerContextExcludes(),
});

/** The image bakes the repository's scheduler.config.yaml; say so if the stacks were built from another. */
export function warnIfConfigDiffers(scope: Construct, configFile: string) {
  const baked = resolve(PROJECT_ROOT, "scheduler.config.yaml");
  const read = (file: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
  };
  if (resolve(configFile) === baked || read(configFile) === read(baked)) return;
  Annotations.of(scope).addWarningV2(
    "switchyard:worker-config",
    `The worker image bakes ${baked} (${WORKER_CONFIG_PATH}), but the pools came from ${configFile}: ` +
      "workers would read other pool settings. Copy the file to scheduler.config.yaml before deploying.",
  );
}
