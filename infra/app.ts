import { resolve } from "node:path";
import { App } from "aws-cdk-lib";
import { ENV } from "../core/names.ts";
import { loadSchedulerConfig } from "../runtime/scheduler-config.ts";
import { FEATURE_FLAGS } from "./secure-defaults.ts";
import { addSwitchyardStacks } from "./switchyard.ts";

// The pools come from the same file the runtime reads (SCHEDULER_CONFIG overrides the default).
const configFile = resolve(process.env[ENV.schedulerConfig] ?? "scheduler.config.yaml");
const config = loadSchedulerConfig({ [ENV.schedulerConfig]: configFile });

const app = new App({ context: FEATURE_FLAGS });
// `-c switchyard:workers=false` leaves out the Fargate workers (VPC, cluster, image): LocalStack's free plan
// runs neither ECS nor ECR.
const workers = String(app.node.tryGetContext("switchyard:workers") ?? "true") !== "false";
// `-c switchyard:deletionProtection=false` for throwaway environments (LocalStack, trials).
const deletionProtection =
  String(app.node.tryGetContext("switchyard:deletionProtection") ?? "true") !== "false";
addSwitchyardStacks(app, { config, configFile, workers, deletionProtection });
