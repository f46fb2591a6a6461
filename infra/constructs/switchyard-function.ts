import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Duration } from "aws-cdk-lib";
import { NodejsFunction } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup } from "aws-cdk-lib/aws-logs";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import type { SchedulerConfig } from "../../core/config.ts";
import { ENV } from "../../core/names.ts";
import { functionDefaults, LOG_RETENTION } from "../secure-defaults.ts";

/** The repository root: entries and the lock file are resolved from here, whatever the cwd. */
export const PROJECT_ROOT = resolve(import.meta.dirname, "../..");

/** The package version, reported by the health route and the workers. */
export const PROJECT_VERSION = (
  JSON.parse(readFileSync(resolve(PROJECT_ROOT, "package.json"), "utf8")) as { version: string }
).version;

/** Where the bundled scheduler config lands inside the Lambda package (/var/task). */
const BUNDLED_CONFIG = "scheduler.config.json";

/** The JSON file written for each config, once per synth. */
const configFiles = new WeakMap<SchedulerConfig, string>();

/**
 * The config as the functions read it: JSON, written at synth from the parsed YAML, so that their
 * bundles need no YAML parser.
 */
export function configJsonFile(config: SchedulerConfig): string {
  let file = configFiles.get(config);
  if (!file) {
    file = join(mkdtempSync(join(tmpdir(), "switchyard-config-")), BUNDLED_CONFIG);
    writeFileSync(file, JSON.stringify(config));
    configFiles.set(config, file);
  }
  return file;
}

export interface SwitchyardFunctionProps {
  /** Entry file, relative to the repository root; it must export `handler`. */
  readonly entry: string;
  /** The scheduler config, bundled next to the code so the runtime reads the same pools as CDK. */
  readonly config: SchedulerConfig;
  readonly environment: Record<string, string>;
  readonly timeout?: Duration;
}

/** A Node.js Lambda with the shared defaults, its own log group, and the scheduler config bundled in. */
export class SwitchyardFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: SwitchyardFunctionProps) {
    const configFile = configJsonFile(props.config);
    super(scope, id, {
      ...functionDefaults,
      entry: resolve(PROJECT_ROOT, props.entry),
      handler: "handler",
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: resolve(PROJECT_ROOT, "package-lock.json"),
      timeout: props.timeout ?? functionDefaults.timeout,
      logGroup: new LogGroup(scope, `${id}Logs`, { retention: LOG_RETENTION }),
      environment: {
        ...functionDefaults.environment,
        ...props.environment,
        [ENV.schedulerConfig]: `/var/task/${BUNDLED_CONFIG}`,
        [ENV.version]: PROJECT_VERSION,
      },
      bundling: {
        ...functionDefaults.bundling,
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_input, output) => [`cp "${configFile}" "${output}/${BUNDLED_CONFIG}"`],
        },
      },
    });

    NagSuppressions.addResourceSuppressions(
      this,
      [
        {
          id: "AwsSolutions-L1",
          reason:
            "nodejs22.x is the runtime the handlers are bundled and tested for; moving to a newer Node.js " +
            "runtime is a deliberate upgrade of functionDefaults, not an automatic one.",
        },
        {
          id: "AwsSolutions-IAM4",
          reason:
            "AWSLambdaBasicExecutionRole only lets the function write its CloudWatch logs; it is the " +
            "AWS-maintained baseline policy for Lambda.",
          appliesTo: [
            "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
          ],
        },
        {
          id: "AwsSolutions-IAM5",
          reason:
            "Active tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, which support no " +
            "resource-level permissions, so their resource is *.",
          appliesTo: ["Resource::*"],
        },
      ],
      true,
    );
  }
}
