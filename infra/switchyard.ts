import { Annotations, type App } from "aws-cdk-lib";
import { capacityWarnings, type SchedulerConfig } from "../core/config.ts";
import { StatefulStack } from "./stateful-stack.ts";
import { StatelessStack } from "./stateless-stack.ts";

export interface SwitchyardProps {
  readonly config: SchedulerConfig;
  /** The file `config` was read from; bundled into the functions. */
  readonly configFile: string;
  readonly deletionProtection?: boolean;
  /** Create the Fargate worker services (off for LocalStack's free plan). @default true */
  readonly workers?: boolean;
}

/** Adds both stacks to an app (env-agnostic, generated names); shared by app.ts and the tests. */
export function addSwitchyardStacks(app: App, props: SwitchyardProps) {
  const stateful = new StatefulStack(app, "SwitchyardStateful", {
    description: "Switchyard data: DynamoDB table, artifacts bucket, admin key and pool credentials",
    deletionProtection: props.deletionProtection,
    pools: props.config.pools,
  });
  const stateless = new StatelessStack(app, "SwitchyardStateless", {
    description: "Switchyard compute: API, functions, pool queues and workers, events topic, tick, alarms",
    table: stateful.table,
    bucket: stateful.bucket,
    adminKey: stateful.adminKey,
    callbackKey: stateful.callbackKey,
    config: props.config,
    configFile: props.configFile,
    credentials: stateful.credentials.secrets,
    workers: props.workers,
  });
  for (const warning of capacityWarnings(props.config)) {
    Annotations.of(stateless).addWarningV2("switchyard:pool-capacity", warning);
  }
  return { stateful, stateless };
}
