import { readFileSync } from "node:fs";
import { type SchedulerConfig, schedulerConfigOf } from "../../core/config.ts";
import type { Deps } from "../../core/deps.ts";
import { refreshConfig } from "../../core/live-config.ts";
import { ENV } from "../../core/names.ts";
import type { ConfigSource } from "../../core/ports.ts";
import {
  type AwsClients,
  awsClients,
  configRefreshSecondsFrom,
  depsFromEnv,
  secretFrom,
} from "../../runtime/composition.ts";
import { loggerLog } from "../../runtime/log.ts";
import { logger } from "./http.ts";
import { tracer } from "./observability.ts";

let clients: AwsClients | undefined;

/** The function's clients, built once per container, each traced in X-Ray. */
export function lambdaClients(): AwsClients {
  if (!clients) {
    const { doc, sqs, s3, sns } = awsClients();
    clients = {
      doc: tracer.captureAWSv3Client(doc),
      sqs: tracer.captureAWSv3Client(sqs),
      s3: tracer.captureAWSv3Client(s3),
      sns: tracer.captureAWSv3Client(sns),
    };
  }
  return clients;
}

/** The functions' log lines go to their Powertools logger. */
const log = loggerLog(logger);

/**
 * The scheduler config bundled beside the code (SCHEDULER_CONFIG), as JSON: the CDK app writes it from
 * the YAML, so that no YAML parser weighs on the functions' cold start.
 */
function bundledConfig(): SchedulerConfig {
  const path = process.env[ENV.schedulerConfig] as string;
  return schedulerConfigOf(JSON.parse(readFileSync(path, "utf8")), path);
}

let cached: Promise<Deps> | undefined;

/**
 * Once per cold start: the admin key (SCHEDULER_ADMIN_KEY or the secret SCHEDULER_ADMIN_KEY_SECRET names)
 * and the callback signing key (SWITCHYARD_CALLBACK_SECRET or the secret SWITCHYARD_CALLBACK_SECRET_ARN
 * names). A failed read is tried again by the next invocation. Each invocation takes a reloaded config
 * (core/live-config.ts), looked for at most every 30 seconds.
 */
export const lambdaDeps = async (configSource?: ConfigSource): Promise<Deps> => {
  const deps = await depsOnce(configSource);
  await refreshConfig(deps, configRefreshSecondsFrom());
  return deps;
};

const depsOnce = (configSource?: ConfigSource): Promise<Deps> => {
  cached ??= Promise.all([
    secretFrom(process.env, ENV.adminKey, ENV.adminKeySecret),
    secretFrom(process.env, ENV.callbackSecret, ENV.callbackSecretArn),
  ]).then(
    ([adminKey, callbackSecret]) => ({
      ...depsFromEnv(lambdaClients(), log, bundledConfig(), process.env, configSource),
      adminKey,
      callbackSecret,
    }),
    (err: unknown) => {
      cached = undefined;
      throw err;
    },
  );
  return cached;
};
