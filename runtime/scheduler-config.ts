/** The scheduler config file (YAML) as the local stack, the workers and the CDK app read it. */
import { readFileSync } from "node:fs";
import { load } from "js-yaml";
import { type SchedulerConfig, schedulerConfigOf } from "../core/config.ts";
import { ValidationError } from "../core/errors.ts";
import { ENV } from "../core/names.ts";
import type { ConfigSource } from "../core/ports.ts";
import { yamlProblem } from "../core/yaml.ts";

/** Parses and validates scheduler config text; errors name the file and the path of the bad field. */
export function parseSchedulerConfig(text: string, source = "scheduler.config.yaml"): SchedulerConfig {
  let raw: unknown;
  try {
    raw = load(text);
  } catch (err) {
    throw new ValidationError(source, `not valid YAML: ${yamlProblem(err)}`);
  }
  return schedulerConfigOf(raw, source);
}

/** Reads `SCHEDULER_CONFIG`, or `scheduler.config.yaml` in the working directory. */
export function loadSchedulerConfig(env: NodeJS.ProcessEnv = process.env): SchedulerConfig {
  const path = env[ENV.schedulerConfig] ?? "scheduler.config.yaml";
  return parseSchedulerConfig(readFileSync(path, "utf8"), path);
}

/** A reload's config from the file `SCHEDULER_CONFIG` names (the local stack's). */
export const fileConfigSource = (env: NodeJS.ProcessEnv = process.env): ConfigSource => ({
  load: async () => loadSchedulerConfig(env),
});

/**
 * A reload's config from an SSM parameter (on AWS: the stack deploys the file there, for operators to
 * edit). Its client loads on first use: only a reload reads it.
 */
export function ssmConfigSource(name: string): ConfigSource {
  return {
    async load() {
      const { SSMClient, GetParameterCommand } = await import("@aws-sdk/client-ssm");
      const { Parameter } = await new SSMClient({}).send(new GetParameterCommand({ Name: name }));
      return parseSchedulerConfig(Parameter?.Value ?? "", name);
    },
  };
}
