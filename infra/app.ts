import { resolve } from "node:path";
import { App } from "aws-cdk-lib";
import { loadSchedulerConfig } from "../core/config.ts";
import { ENV } from "../core/names.ts";
import { FEATURE_FLAGS } from "./secure-defaults.ts";
import { addSwitchyardStacks } from "./switchyard.ts";

// The pools come from the same file the runtime reads (SCHEDULER_CONFIG overrides the default).
const configFile = resolve(process.env[ENV.schedulerConfig] ?? "scheduler.config.yaml");
const config = loadSchedulerConfig({ [ENV.schedulerConfig]: configFile });

addSwitchyardStacks(new App({ context: FEATURE_FLAGS }), { config, configFile });
